#!/usr/bin/env bash
# npm run fuzz: the contract fuzzing of tests/e2e/fuzz.rs, deeper than the bounded run inside
# `npm test`: FUZZ_MAX_EXAMPLES (default 120) test cases per operation and phase, with a new
# seed each run unless FUZZ_SEED is given (the seed is printed, so a failure can be replayed).
# The report (JUnit, JSON, coverage.txt) is left under target/e2e/server-*/fuzz.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
export FUZZ_MAX_EXAMPLES="${FUZZ_MAX_EXAMPLES:-120}"
export FUZZ_SEED="${FUZZ_SEED:-$(date +%s)}"
echo "fuzz: seed $FUZZ_SEED, $FUZZ_MAX_EXAMPLES examples per operation and phase"
bash scripts/build.sh
cargo test --locked --test e2e -- fuzz:: --nocapture
