#!/usr/bin/env bash
# The test command: Node 24, dependencies, PostgreSQL/Redis/ClickHouse, the Prisma client, then
# the whole suite on the real services. Arguments go to vitest (e.g. a file to run just that).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
ensure_node_modules
bash scripts/services.sh
npm run --silent generate
exec npx vitest run "$@"
