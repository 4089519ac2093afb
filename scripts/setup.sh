#!/usr/bin/env bash
# Idempotent installer: everything `npm run dev` and `npm test` need, on a machine that has only
# rustup, Node 20 and npm. Silent when all is in place; says what it installs otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "setup: $*" >&2; }
CARGO_BIN="${CARGO_HOME:-$HOME/.cargo}/bin"
export PATH="$CARGO_BIN:$PATH"

WORKER_BUILD_VERSION=0.8.7
# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding Rust target wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ "$("$CARGO_BIN/worker-build" --version 2>/dev/null || true)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (takes a few minutes, once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked
fi

if [ "$("$CARGO_BIN/wasm-bindgen" --version 2>/dev/null || true)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes a few minutes, once)"
  # Not --locked: its lock file names a crate version the registry no longer serves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm dependencies (wrangler, binaryen)"
  npm ci --no-audit --no-fund --loglevel=error
fi

# schemathesis (contract fuzzing in `npm test`) in a project-local virtual environment.
SCHEMATHESIS_VERSION=4.32.5
if [ "$(.venv/bin/schemathesis --version 2>/dev/null || true)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# Local development secrets (gitignored); keys added by later versions are appended.
for name in API_SECRET_KEY STRIPE_WEBHOOK_SECRET VISITOR_HASH_SECRET; do
  if ! grep -qs "^$name=" .dev.vars; then
    [ -f .dev.vars ] || echo "# Local development secrets (never commit). Production: wrangler secret put NAME" > .dev.vars
    say "adding a fresh development $name to .dev.vars"
    echo "$name=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))')" >> .dev.vars
  fi
done
if ! grep -qs "^PUBLIC_BASE_URL=" .dev.vars; then
  echo "PUBLIC_BASE_URL=http://127.0.0.1:8787" >> .dev.vars
fi
