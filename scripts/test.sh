#!/usr/bin/env bash
# The test command: Node 24, dependencies, PostgreSQL/Redis/ClickHouse (and a two-shard
# ClickHouse cluster with ZooKeeper), the Prisma client, then the whole suite on the real
# services, once per ClickHouse engine: the 18.16 server (CLICKHOUSE_URL=http://127.0.0.1:8123)
# and the embedded ClickHouse 26 (CLICKHOUSE_URL=embedded:, a temporary data directory in each
# test process). Arguments go to vitest (e.g. a file to run just that); DATAHUS_TEST_ENGINES=server
# or =embedded runs one engine only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
prepare_to_run
# test/integration/cluster.test.ts runs on a two-shard ClickHouse cluster of its own.
bash scripts/services.sh cluster
set -a
source <(grep '^DATAHUS_TEST_CLUSTER_' .data/cluster/cluster.env)
set +a
# The fault test runs real worker processes from dist/.
npm run --silent build

mkdir -p .data
engines=${DATAHUS_TEST_ENGINES:-server embedded}
status=0
results=()
for engine in $engines; do
  case "$engine" in
    # Files whose engine does not depend on the pass run once: the cluster's servers, the
    # private servers the outage test stops, and `datahus all` on an embedded engine of its own.
    server) url="http://127.0.0.1:${CLICKHOUSE_HTTP_PORT:-8123}" once=(test/integration/one-process.test.ts) ;;
    embedded)
      url="embedded:"
      once=(test/integration/cluster.test.ts test/integration/store-outages.test.ts)
      ;;
    *) echo "test.sh: unknown engine '$engine' (server or embedded)" >&2; exit 2 ;;
  esac
  result=".data/vitest-results-$engine.json"
  rm -f "$result"
  echo "tests: ClickHouse engine $engine ($url)"
  excludes=()
  for file in "${once[@]}"; do excludes+=(--exclude "$file"); done
  CLICKHOUSE_URL="$url" npx vitest run "${excludes[@]}" --passWithNoTests --reporter=default --reporter=json \
    --outputFile.json="$result" "$@" ||
    status=$?
  results+=("$DATAHUS_ROOT/$result")
done

# One plain closing line with the counts of both runs, whatever reporter is in use.
node -e '
  const fs = require("node:fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file)) { failed++; continue; }
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "${results[@]}"
exit "$status"
