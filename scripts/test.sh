#!/usr/bin/env bash
# Builds the worker, then runs every test: native unit/property tests of the pure modules and the
# end-to-end suite (tests/e2e, contract fuzzing included) against instances served by
# scripts/serve.mjs (the workerd, local D1 and Durable Objects of `wrangler dev`).
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/build.sh
cargo test --locked "$@"
