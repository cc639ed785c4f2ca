#!/usr/bin/env bash
# The benchmark command: Node 24, dependencies, PostgreSQL/Redis/ClickHouse, the Prisma client,
# then the benchmarks in bench/ (one file at a time, on the real services). They print figures
# and assert nothing about time. Arguments go to vitest (e.g. a file to run just that one).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
prepare_to_run
# The ingestion bench runs a real worker process from dist/.
npm run --silent build

npx vitest run --config bench/vitest.config.ts "$@"
