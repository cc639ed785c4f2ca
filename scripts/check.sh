#!/usr/bin/env bash
# Static checks: types (source and tests), lint, formatting, and drift of the generated files
# that are committed (schema.graphql from the code, test/generated from codegen).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$DATAHUS_ROOT"
ensure_node_modules
npm run --silent generate

echo "check: types"
npx tsc -p tsconfig.json --noEmit
echo "check: lint"
npx eslint --max-warnings 0 .
echo "check: format"
npx prettier --check --log-level warn .
echo "check: schema.graphql"
npx tsc -p tsconfig.build.json
node dist/src/main.js emit-schema --check
echo "check: codegen"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp test/generated/graphql.ts "$tmp/committed.ts"
npx graphql-codegen --config codegen.yml --silent
if ! cmp -s test/generated/graphql.ts "$tmp/committed.ts"; then
  cp "$tmp/committed.ts" test/generated/graphql.ts
  echo "test/generated/graphql.ts is out of date: run npm run codegen and commit it" >&2
  exit 1
fi
echo "check: ok"
