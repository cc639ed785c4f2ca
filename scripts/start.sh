#!/usr/bin/env bash
# Runs Datahus on this machine: Node 24, dependencies, PostgreSQL, build, migrations, the demo
# marketplace, then the API and the worker in one process (`datahus all`). Ctrl-C (or SIGTERM)
# stops it. ClickHouse is the engine embedded in that process unless CLICKHOUSE_URL names a
# server; Redis is used only when REDIS_URL is set.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
ensure_node_modules
bash scripts/services.sh for-run
npm run --silent generate
npm run --silent build
node dist/src/main.js migrate
# A demo publisher, buyer and datasets, so there is something to query at once (idempotent;
# skipped when NODE_ENV=production). It prints the demo buyer's API key.
node dist/src/main.js seed
exec node --enable-source-maps --expose-gc dist/src/main.js all
