#!/usr/bin/env bash
# The test command: Node 24, dependencies, PostgreSQL/Redis/ClickHouse (and a ClickHouse cluster
# with ZooKeeper), the Prisma client, then the whole suite on the real services. Arguments go to
# vitest (e.g. a file to run just that).
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
results=.data/vitest-results.json
rm -f "$results"
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$results" "$@" || status=$?
# One plain closing line with the counts, whatever reporter is in use.
if [ -f "$results" ]; then
  node -e '
    const r = require(process.argv[1]);
    console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
  ' "$DATAHUS_ROOT/$results"
fi
exit "$status"
