#!/usr/bin/env bash
# The benchmark command: Node 24, dependencies, PostgreSQL/Redis/ClickHouse, the Prisma client,
# then the benchmarks in bench/ (one file at a time, on the real services), once per ClickHouse
# engine: the 18.16 server and the embedded 26.7. They print figures and assert nothing about time.
# Arguments go to vitest (e.g. a file to run just that one); DATAHUS_BENCH_ENGINES=server (or
# =embedded) runs one engine only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
prepare_to_run
# The ingestion bench runs a real worker process from dist/.
npm run --silent build

status=0
for engine in ${DATAHUS_BENCH_ENGINES:-server embedded}; do
  case "$engine" in
    server) url="http://127.0.0.1:${CLICKHOUSE_HTTP_PORT:-8123}" ;;
    embedded) url="embedded:" ;;
    *) echo "bench.sh: unknown engine '$engine' (server or embedded)" >&2; exit 2 ;;
  esac
  echo "bench: ClickHouse engine $engine ($url)"
  CLICKHOUSE_URL="$url" npx vitest run --config bench/vitest.config.ts "$@" || status=$?
done
exit "$status"
