#!/usr/bin/env bash
# Builds the worker into build/ with worker-build, using the tools `npm run setup` installed
# (worker-build would otherwise download wasm-bindgen, wasm-opt and esbuild from GitHub).
set -euo pipefail
cd "$(dirname "$0")/.."
# The e2e harness builds once before starting many `wrangler dev` instances.
if [ "${SOUNDHASH_SKIP_BUILD:-}" = "1" ]; then exit 0; fi
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export WASM_BINDGEN_BIN="$CARGO_BIN/wasm-bindgen"
export WASM_OPT_BIN="$PWD/node_modules/.bin/wasm-opt"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
"$CARGO_BIN/worker-build" --release
# worker-build keeps the wasm "name" section (function names for stack traces): ~20 % of the
# binary. Panics are bugs we never expect in production, and the budget is the gzip upload size,
# so drop it. Same feature set as worker-build's own wasm-opt run.
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm --strip-debug \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling
