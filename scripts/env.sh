# Sourced by every project script: puts a Node.js >= 22.12 first on PATH.
# The machine's own Node may be older (Debian ships 20, past end of life); we never replace it.
# Instead Node 24 LTS is installed from the npm registry into .tools/node, inside the project.
# shellcheck shell=bash
DATAHUS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DATAHUS_ROOT

node_is_recent() {
  command -v node >/dev/null 2>&1 || return 1
  node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=12)?0:1)'
}

local_node_bin="$DATAHUS_ROOT/.tools/node/node_modules/.bin"
if [ -x "$local_node_bin/node" ]; then
  export PATH="$local_node_bin:$PATH"
fi
if ! node_is_recent; then
  echo "datahus: Node.js >= 22.12 not found; installing Node 24 LTS into .tools/node" >&2
  mkdir -p "$DATAHUS_ROOT/.tools/node"
  npm install --prefix "$DATAHUS_ROOT/.tools/node" --no-audit --no-fund --loglevel=error node@24 >&2
  export PATH="$local_node_bin:$PATH"
  node_is_recent || { echo "datahus: could not bootstrap Node 24" >&2; exit 1; }
fi

# Installs node_modules when package-lock.json changed since the last install (or none exists).
ensure_node_modules() {
  local stamp="$DATAHUS_ROOT/node_modules/.datahus-lock"
  if [ ! -f "$stamp" ] || ! cmp -s "$DATAHUS_ROOT/package-lock.json" "$stamp"; then
    (cd "$DATAHUS_ROOT" && npm ci --no-audit --no-fund --loglevel=error) >&2
    cp "$DATAHUS_ROOT/package-lock.json" "$stamp"
  fi
}

# What every command that runs the code needs first: dependencies, the services (started or
# installed when missing) and the Prisma client, generated offline.
prepare_to_run() {
  ensure_node_modules
  bash "$DATAHUS_ROOT/scripts/services.sh"
  (cd "$DATAHUS_ROOT" && npm run --silent generate)
}
