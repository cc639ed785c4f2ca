#!/usr/bin/env bash
# Runs Datahus on this machine: Node 24, dependencies, services, build, migrations, then the
# worker in the background and the API in the foreground. Ctrl-C (or SIGTERM) stops both.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
prepare_to_run
npm run --silent build
node dist/src/main.js migrate
# A demo publisher, buyer and datasets, so there is something to query at once (idempotent;
# skipped when NODE_ENV=production). It prints the demo buyer's API key.
node dist/src/main.js seed

node --enable-source-maps dist/src/main.js worker &
worker=$!
stop() { kill -TERM "$worker" 2>/dev/null || true; wait "$worker" 2>/dev/null || true; }
trap stop EXIT
node --enable-source-maps dist/src/main.js serve
