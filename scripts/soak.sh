#!/usr/bin/env bash
# npm run soak: the soak of tests/e2e/soak.rs (a mixed load from concurrent clients, the
# instance killed with SIGKILL halfway and started again on its state, every counter checked
# against what the clients saw) for SOAK_SECONDS (default 600); its figures replace the
# "## Soak" section of BENCHMARKS.md. `npm test` runs the same test for 40 s.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
export SOAK_SECONDS="${SOAK_SECONDS:-600}"
export SOAK_REPORT="$PWD/target/soak.md"
rm -f "$SOAK_REPORT"
bash scripts/build.sh
cargo test --locked --test e2e -- soak:: --nocapture
node - <<'JS'
const fs = require("node:fs");
const section = fs.readFileSync(process.env.SOAK_REPORT, "utf8").trimEnd() + "\n";
const file = "BENCHMARKS.md";
let text = fs.readFileSync(file, "utf8").replace(/\n## Soak[\s\S]*?(?=\n## |\nCommand: `npm run bench`|$)/, "");
const trailer = text.lastIndexOf("\nCommand: `npm run bench`");
text = trailer < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, trailer).trimEnd()}\n\n${section}${text.slice(trailer)}`;
fs.writeFileSync(file, text);
console.log("written to BENCHMARKS.md");
JS
