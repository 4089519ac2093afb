#!/usr/bin/env bash
# Serves the worker on http://127.0.0.1:${PORT:-8787} with a local D1 (migrations applied) and
# local Durable Objects, persisted in .wrangler/state. Cron triggers: GET /__scheduled?cron=...
set -euo pipefail
cd "$(dirname "$0")/.."
export WRANGLER_SEND_METRICS=false
node_modules/.bin/wrangler d1 migrations apply DB --local
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --test-scheduled "$@"
