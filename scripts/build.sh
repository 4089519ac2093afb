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
# worker-build's wasm-opt is off (Cargo.toml: package.metadata.wasm-pack); this is its run, tuned for
# the budget, which is the gzip upload size (measured on this build: 479 KiB against 556 KiB with
# worker-build's `-O` and a strip):
# - `-Os` with functions of one caller inlined only up to 40 bytes: inlining large single-caller
#   functions makes the binary smaller raw but larger gzipped (its copies compress worse);
# - functions ordered by name, so that the many monomorphizations of one generic (serde's, D1
#   row decoders) sit side by side where gzip finds their likeness (needs the name section, which
#   wasm-bindgen keeps), then
# - the name section dropped (function names for stack traces: panics are bugs we never expect).
# Same feature set as worker-build's own run.
"$WASM_OPT_BIN" build/index_bg.wasm -o build/index_bg.wasm -Os --one-caller-inline-max-function-size 40 \
  --reorder-functions-by-name --strip-debug \
  --enable-mutable-globals --enable-sign-ext --enable-nontrapping-float-to-int --enable-bulk-memory \
  --enable-multivalue --enable-reference-types --enable-exception-handling
