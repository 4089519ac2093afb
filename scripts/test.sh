#!/usr/bin/env bash
# Builds the worker, then runs every test: native unit/property tests of the pure modules and the
# end-to-end suite (tests/e2e) against real `wrangler dev` instances.
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
bash scripts/build.sh
cargo test --locked "$@"
