#!/usr/bin/env bash
# Makes the services Datahus needs reachable on loopback: PostgreSQL (5432), Redis (6379) and
# ClickHouse (HTTP 8123). Uses whatever already answers; starts what is installed but stopped;
# installs ClickHouse from Debian when it is missing (docs/architecture.md §4). Also installs OpenSSH's sshd
# (not started: the SFTP tests run their own) and Chromium (for the page tests). Safe to run
# repeatedly.
#
#   scripts/services.sh                  make all three reachable, sshd installed (default; the tests)
#   scripts/services.sh for-run          PostgreSQL, plus Redis/ClickHouse only when REDIS_URL /
#                                        CLICKHOUSE_URL name the local ones (scripts/start.sh)
#   scripts/services.sh stop-clickhouse  stop the ClickHouse this script started
#   scripts/services.sh cluster          a two-shard ClickHouse cluster with ZooKeeper (for the
#                                        cluster tests; writes .data/cluster/cluster.env)
#   scripts/services.sh stop-cluster     stop that cluster
#
# ClickHouse runs with a project-local config and data under .data/clickhouse (git-ignored), so
# it never touches /etc/clickhouse-server or /var/lib/clickhouse, and runs as whoever calls this.
# The cluster lives under .data/cluster the same way.

# When sourced, run as a child instead: `set -e` and `exit` must not leak into the caller's shell.
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
  bash "${BASH_SOURCE[0]}" "$@"
  return $?
fi

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CH_DIR="$ROOT/.data/clickhouse"
CH_PID_FILE="$CH_DIR/clickhouse-server.pid"
CH_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CH_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
PG_PORT=5432
REDIS_PORT=6379

# Debian keeps daemons in /usr/sbin, which a non-root PATH often lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"

say() { printf '%s\n' "$*"; }
fail() {
  printf 'services.sh: %s\n' "$*" >&2
  exit 1
}

# Polls a check function until it succeeds or the timeout (seconds) passes.
wait_for() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    fail "need root (or passwordless sudo) to run: $*"
  fi
}

# ---------------------------------------------------------------------------------- PostgreSQL

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h 127.0.0.1 -p "$PG_PORT" -t 2
  else
    tcp_open "$PG_PORT"
  fi
}

ensure_postgres() {
  if pg_up; then
    say "postgres: already up (127.0.0.1:$PG_PORT)"
    return
  fi
  local version
  version="$(ls /etc/postgresql 2>/dev/null | head -1 || true)"
  if [[ -z "$version" ]] || ! command -v pg_ctlcluster >/dev/null 2>&1; then
    fail "PostgreSQL is not reachable on 127.0.0.1:$PG_PORT and no local cluster is installed"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start ||
    fail "pg_ctlcluster could not start PostgreSQL $version"
  wait_for 30 pg_up || fail "PostgreSQL $version started but does not answer on 127.0.0.1:$PG_PORT"
  say "postgres: started (cluster $version/main, 127.0.0.1:$PG_PORT)"
}

# --------------------------------------------------------------------------------------- Redis

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" == "PONG" ]]
  else
    tcp_open "$REDIS_PORT"
  fi
}

ensure_redis() {
  if redis_up; then
    say "redis: already up (127.0.0.1:$REDIS_PORT)"
    return
  fi
  command -v redis-server >/dev/null 2>&1 ||
    fail "Redis is not reachable on 127.0.0.1:$REDIS_PORT and redis-server is not installed"
  # No persistence: Redis only holds rate-limit counters and pub/sub fan-out here.
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    >/dev/null || fail "redis-server could not start"
  wait_for 15 redis_up || fail "redis-server started but does not answer on 127.0.0.1:$REDIS_PORT"
  say "redis: started (127.0.0.1:$REDIS_PORT)"
}

# ---------------------------------------------------------------------------------- ClickHouse

ch_ping() {
  if command -v curl >/dev/null 2>&1; then
    curl -sf --max-time 2 "http://127.0.0.1:$CH_HTTP_PORT/ping" 2>/dev/null
  else
    (
      exec 3<>"/dev/tcp/127.0.0.1/$CH_HTTP_PORT" || exit 1
      printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
      timeout 2 cat <&3 | tail -n 1
    ) 2>/dev/null
  fi
}

ch_up() { [[ "$(ch_ping)" == Ok.* ]]; }

# The pid of the server this script started, if that process is still alive.
ch_pid() {
  [[ -f "$CH_PID_FILE" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$CH_PID_FILE")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A reused pid must not be mistaken for our server.
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config-file=$CH_DIR/config.xml" ||
    return 1
  printf '%s\n' "$pid"
}

# Installs Debian packages without letting their postinst start system-wide daemons (ClickHouse on
# 8123, sshd on 22): we run our own. A policy-rc.d that already exists (containers ship one) is
# left as it is.
apt_install() {
  command -v apt-get >/dev/null 2>&1 || fail "$1 is missing and apt-get is not available"
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e "$policy" ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' >$policy && chmod 755 $policy"
    added_policy=1
  fi
  local status=0
  as_root apt-get update -q || status=$?
  if [[ $status -eq 0 ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" ||
      status=$?
  fi
  [[ -n "$added_policy" ]] && as_root rm -f "$policy"
  [[ $status -eq 0 ]] || fail "apt-get could not install $* (exit $status)"
}

install_clickhouse() {
  say "clickhouse: clickhouse-server not found; installing it from Debian (apt-get)"
  apt_install clickhouse-server clickhouse-client
  command -v clickhouse-server >/dev/null 2>&1 || fail "clickhouse-server is still missing after apt-get install"
}

xml_escape() {
  local s=$1
  s=${s//&/&amp;}
  s=${s//</&lt;}
  s=${s//>/&gt;}
  printf '%s' "$s"
}

# 18.16 element names, checked against the package's /etc/clickhouse-server/config.xml. No
# interserver_http_port: without replication nothing needs it, and it would take port 9009.
# Arguments (for the cluster's nodes): folder, HTTP port, TCP port, extra elements.
write_clickhouse_config() {
  local home=${1:-$CH_DIR} http_port=${2:-$CH_HTTP_PORT} tcp_port=${3:-$CH_TCP_PORT} extra=${4:-}
  local dir
  dir="$(xml_escape "$home")"
  mkdir -p "$home"/{data,tmp,user_files,format_schemas,log}
  cat >"$home/config.xml" <<EOF
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh; edits are overwritten on the next start. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$dir/log/clickhouse-server.log</log>
        <errorlog>$dir/log/clickhouse-server.err.log</errorlog>
        <size>50M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>$http_port</http_port>
    <tcp_port>$tcp_port</tcp_port>
    <path>$dir/data/</path>
    <tmp_path>$dir/tmp/</tmp_path>
    <user_files_path>$dir/user_files/</user_files_path>
    <format_schema_path>$dir/format_schemas/</format_schema_path>
    <users_config>$dir/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <!-- DateTime values render and parse the same on every machine. -->
    <timezone>UTC</timezone>
    <max_connections>512</max_connections>
    <max_concurrent_queries>32</max_concurrent_queries>
    <!-- Longer than the Node client's idle-socket TTL (2.5 s), so the server never closes
         a socket the client is about to reuse. -->
    <keep_alive_timeout>10</keep_alive_timeout>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <mlock_executable>false</mlock_executable>
${extra}</yandex>
EOF
  cat >"$home/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Generated by scripts/services.sh; edits are overwritten on the next start. -->
<yandex>
    <profiles>
        <default>
            <!-- Sized for a 2-core development or CI machine. -->
            <max_memory_usage>2000000000</max_memory_usage>
            <max_memory_usage_for_all_queries>4000000000</max_memory_usage_for_all_queries>
            <max_threads>2</max_threads>
            <background_pool_size>4</background_pool_size>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <log_queries>0</log_queries>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::1</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

# Logs are appended across starts: show only what this start wrote (CH_LOG_FROM is set at launch).
CH_LOG_FROM=0
ch_log_size() { stat -c %s "$CH_DIR/log/clickhouse-server.err.log" 2>/dev/null || echo 0; }

ch_log_tail() {
  local err="$CH_DIR/log/clickhouse-server.err.log" main="$CH_DIR/log/clickhouse-server.log"
  if [[ -s "$err" ]] && (($(ch_log_size) > CH_LOG_FROM)); then
    printf -- '--- %s (this start)\n' "$err" >&2
    tail -c +"$((CH_LOG_FROM + 1))" "$err" | tail -n 30 >&2
  elif [[ -s "$main" ]]; then
    printf -- '--- %s (last 30 lines)\n' "$main" >&2
    tail -n 30 "$main" >&2
  fi
}

pid_gone() { ! kill -0 "$1" 2>/dev/null; }

wait_for_clickhouse() {
  local started=$SECONDS
  until ch_up; do
    if ((SECONDS - started >= 60)); then
      ch_log_tail
      fail "ClickHouse did not answer http://127.0.0.1:$CH_HTTP_PORT/ping within 60 s"
    fi
    # The daemon writes its pid file before loading tables; no live pid after a few seconds
    # means it exited (bad config, port taken, data folder locked by another server).
    if ((SECONDS - started >= 10)) && ! ch_pid >/dev/null && ! ch_up; then
      ch_log_tail
      fail "clickhouse-server exited during start-up (logs in $CH_DIR/log/)"
    fi
    sleep 0.5
  done
}

ensure_clickhouse() {
  if ch_up; then
    say "clickhouse: already up (http://127.0.0.1:$CH_HTTP_PORT)"
    return
  fi
  if ! command -v clickhouse-server >/dev/null 2>&1; then
    install_clickhouse
    if ch_up; then
      say "clickhouse: up after install (started by the package, http://127.0.0.1:$CH_HTTP_PORT)"
      return
    fi
  fi

  local pid
  if pid="$(ch_pid)"; then
    local running_port
    running_port="$(sed -n 's:.*<http_port>\([0-9]*\)</http_port>.*:\1:p' "$CH_DIR/config.xml")"
    if [[ "$running_port" != "$CH_HTTP_PORT" ]]; then
      fail "this project's ClickHouse already runs on port $running_port (pid $pid); run" \
        "'scripts/services.sh stop-clickhouse' before starting it on port $CH_HTTP_PORT"
    fi
    # Our server is alive but not answering yet (still loading tables): wait rather than start
    # a second one on the same data folder.
    say "clickhouse: waiting for the server started earlier (pid $pid)"
  else
    rm -f "$CH_PID_FILE"
    write_clickhouse_config
    CH_LOG_FROM="$(ch_log_size)"
    # The parent returns once the daemon has forked; the daemon writes the pid file.
    clickhouse-server --config-file="$CH_DIR/config.xml" --pid-file="$CH_PID_FILE" --daemon \
      >>"$CH_DIR/log/launch.log" 2>&1 || {
      ch_log_tail
      fail "clickhouse-server failed to launch (see $CH_DIR/log/)"
    }
  fi

  wait_for_clickhouse
  say "clickhouse: started (http://127.0.0.1:$CH_HTTP_PORT, tcp $CH_TCP_PORT, pid $(ch_pid || echo '?'), data in $CH_DIR)"
}

stop_clickhouse() {
  local pid
  if ! pid="$(ch_pid)"; then
    rm -f "$CH_PID_FILE"
    say "clickhouse: not running (nothing started by this script)"
    return
  fi
  kill -TERM "$pid"
  if ! wait_for 30 pid_gone "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    say "clickhouse: did not stop within 30 s; killed pid $pid"
  else
    say "clickhouse: stopped (pid $pid)"
  fi
  rm -f "$CH_PID_FILE"
}

# ---------------------------------------------------------------------------------------- sshd

# Only installed here, never started: the SFTP tests start their own sshd on a free loopback
# port with a throwaway config (test/support/sshd.ts). /run/sshd is its privilege-separation
# directory, which the package normally creates at boot.
ensure_sshd() {
  if ! command -v sshd >/dev/null 2>&1; then
    say "sshd: not found; installing openssh-server from Debian (apt-get)"
    apt_install openssh-server openssh-sftp-server
    command -v sshd >/dev/null 2>&1 || fail "sshd is still missing after apt-get install"
  fi
  [[ -d /run/sshd ]] || as_root mkdir -p -m 0755 /run/sshd
  say "sshd: installed ($(command -v sshd); the SFTP tests start their own)"
}

# ------------------------------------------------------------------------------------- cluster

# A two-shard ClickHouse cluster on loopback for the cluster tests (test/integration/cluster.test.ts)
# and for trying cluster mode (README, "Running on a cluster"): ZooKeeper from Debian, then two
# clickhouse-server processes, shards 01 and 02 with one replica (r1) each, in a cluster named
# datahus_test. Ports are picked free at a cold start and written, with the URLs, to cluster.env.
CLUSTER_DIR="$ROOT/.data/cluster"
CLUSTER_ENV="$CLUSTER_DIR/cluster.env"
CLUSTER_NAME=datahus_test
ZK_DIR="$CLUSTER_DIR/zookeeper"
ZK_PID_FILE="$ZK_DIR/zookeeper.pid"
ZK_SERVER=/usr/share/zookeeper/bin/zkServer.sh
CLUSTER_NODES=(1 2)
ZK_PORT="" CH1_HTTP="" CH1_TCP="" CH1_INTERSERVER="" CH2_HTTP="" CH2_TCP="" CH2_INTERSERVER=""

# The first port from $1 up that nothing listens on and that is not among the other arguments.
free_port() {
  local port=$1
  shift
  while tcp_open "$port" || [[ " $* " == *" $port "* ]]; do port=$((port + 1)); done
  printf '%s\n' "$port"
}

# The pid in file $1 if that process is alive and its command line contains $2.
live_pid() {
  [[ -f "$1" ]] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$1")"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2" || return 1
  printf '%s\n' "$pid"
}

node_dir() { printf '%s/ch%s\n' "$CLUSTER_DIR" "$1"; }
node_port() { local var="CH$1_$2" && printf '%s\n' "${!var}"; }
node_pid() { live_pid "$(node_dir "$1")/clickhouse-server.pid" "--config-file=$(node_dir "$1")/config.xml"; }
zk_pid() { live_pid "$ZK_PID_FILE" "$ZK_DIR/zoo.cfg"; }

# ZooKeeper's four-letter words ("ruok" answers "imok"); only those whitelisted in zoo.cfg.
zk_word() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$ZK_PORT" || exit 1
    printf '%s' "$1" >&3
    timeout 2 cat <&3
  ) 2>/dev/null
}
zk_ok() { [[ "$(zk_word ruok)" == imok ]]; }

node_query() {
  curl -sf --max-time 5 "http://127.0.0.1:$(node_port "$1" HTTP)/" --data-binary "$2" 2>/dev/null
}
# Up for the tests means answering and talking to ZooKeeper (replicated tables need it).
node_ok() { [[ "$(node_query "$1" "SELECT count() > 0 FROM system.zookeeper WHERE path = '/'")" == 1 ]]; }

cluster_ok() {
  [[ -n "$ZK_PORT" ]] && zk_pid >/dev/null && zk_ok || return 1
  local n
  for n in "${CLUSTER_NODES[@]}"; do node_pid "$n" >/dev/null && node_ok "$n" || return 1; done
}

load_cluster_env() {
  [[ -f "$CLUSTER_ENV" ]] || return 0
  local name value
  while IFS='=' read -r name value; do
    case "$name" in
      ZK_PORT | CH[12]_HTTP | CH[12]_TCP | CH[12]_INTERSERVER) printf -v "$name" '%s' "$value" ;;
    esac
  done <"$CLUSTER_ENV"
}

# Keeps the ports of the last start where they are still free, so URLs stay the same.
pick_cluster_ports() {
  local taken=() spec name port
  for spec in ZK_PORT:12181 CH1_HTTP:18123 CH1_TCP:19000 CH1_INTERSERVER:19009 CH2_HTTP:18124 \
    CH2_TCP:19001 CH2_INTERSERVER:19010; do
    name=${spec%%:*}
    port="$(free_port "${!name:-${spec#*:}}" "${taken[@]}")"
    printf -v "$name" '%s' "$port"
    taken+=("$port")
  done
}

write_cluster_env() {
  mkdir -p "$CLUSTER_DIR"
  cat >"$CLUSTER_ENV" <<EOF
# Written by scripts/services.sh cluster; scripts/test.sh exports the DATAHUS_TEST_ lines.
DATAHUS_TEST_CLUSTER_NAME=$CLUSTER_NAME
DATAHUS_TEST_CLUSTER_URL=http://127.0.0.1:$CH1_HTTP
DATAHUS_TEST_CLUSTER_SHARD_URLS=http://127.0.0.1:$CH1_HTTP,http://127.0.0.1:$CH2_HTTP
ZK_PORT=$ZK_PORT
CH1_HTTP=$CH1_HTTP
CH1_TCP=$CH1_TCP
CH1_INTERSERVER=$CH1_INTERSERVER
CH2_HTTP=$CH2_HTTP
CH2_TCP=$CH2_TCP
CH2_INTERSERVER=$CH2_INTERSERVER
EOF
}

ensure_zookeeper_installed() {
  [[ -x "$ZK_SERVER" ]] && return
  say "zookeeper: not found; installing it from Debian (apt-get)"
  apt_install zookeeper
  [[ -x "$ZK_SERVER" ]] || fail "$ZK_SERVER is still missing after apt-get install zookeeper"
}

# Foreground mode under setsid: its own process group (stopped as a group), no init script, no
# system-wide /var/lib/zookeeper. The AdminServer (an HTTP port of its own) and JMX (an RMI port
# on every interface) stay off; the heap is sized for a test machine.
start_zookeeper() {
  mkdir -p "$ZK_DIR"/{data,log}
  cat >"$ZK_DIR/zoo.cfg" <<EOF
# Generated by scripts/services.sh; edits are overwritten on the next start.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$ZK_PORT
clientPortAddress=127.0.0.1
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,stat
maxClientCnxns=0
EOF
  JMXDISABLE=true SERVER_JVMFLAGS=-Xmx256m setsid "$ZK_SERVER" start-foreground "$ZK_DIR/zoo.cfg" \
    >>"$ZK_DIR/log/zookeeper.out" 2>&1 </dev/null &
  printf '%s\n' "$!" >"$ZK_PID_FILE"
  if ! wait_for 60 zk_ok; then
    tail -n 30 "$ZK_DIR/log/zookeeper.out" >&2 || true
    fail "ZooKeeper did not answer imok on 127.0.0.1:$ZK_PORT within 60 s (logs in $ZK_DIR/log/)"
  fi
  say "zookeeper: started (127.0.0.1:$ZK_PORT, pid $(zk_pid || echo '?'), data in $ZK_DIR/data)"
}

# What a node adds to the single server's config: ZooKeeper, its shard and replica names (the
# {shard} and {replica} macros of ReplicatedReplacingMergeTree paths), the cluster, and the
# distributed DDL queue that ON CLUSTER statements go through.
node_extra_config() {
  local n=$1
  cat <<EOF
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <interserver_http_port>$(node_port "$n" INTERSERVER)</interserver_http_port>
    <zookeeper>
        <node><host>127.0.0.1</host><port>$ZK_PORT</port></node>
        <session_timeout_ms>30000</session_timeout_ms>
    </zookeeper>
    <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>
    <macros><shard>0$n</shard><replica>r1</replica></macros>
    <remote_servers>
        <$CLUSTER_NAME>
EOF
  local m
  for m in "${CLUSTER_NODES[@]}"; do
    cat <<EOF
            <shard>
                <internal_replication>true</internal_replication>
                <replica><host>127.0.0.1</host><port>$(node_port "$m" TCP)</port></replica>
            </shard>
EOF
  done
  cat <<EOF
        </$CLUSTER_NAME>
    </remote_servers>
EOF
}

start_node() {
  local n=$1 dir
  dir="$(node_dir "$n")"
  rm -f "$dir/clickhouse-server.pid"
  write_clickhouse_config "$dir" "$(node_port "$n" HTTP)" "$(node_port "$n" TCP)" "$(node_extra_config "$n")
"
  clickhouse-server --config-file="$dir/config.xml" --pid-file="$dir/clickhouse-server.pid" --daemon \
    >>"$dir/log/launch.log" 2>&1 || fail "clickhouse-server (shard $n) failed to launch (see $dir/log/)"
}

wait_for_node() {
  local n=$1 dir
  dir="$(node_dir "$n")"
  if ! wait_for 90 node_ok "$n"; then
    tail -n 30 "$dir/log/clickhouse-server.err.log" >&2 2>/dev/null || true
    fail "ClickHouse shard $n did not answer (with ZooKeeper) on port $(node_port "$n" HTTP) within 90 s"
  fi
  say "clickhouse shard 0$n: started (http://127.0.0.1:$(node_port "$n" HTTP), tcp $(node_port "$n" TCP), pid $(node_pid "$n" || echo '?'))"
}

ensure_cluster() {
  local started=$SECONDS n
  load_cluster_env
  if cluster_ok; then
    say "cluster: already up ($CLUSTER_NAME: http://127.0.0.1:$CH1_HTTP, http://127.0.0.1:$CH2_HTTP; zookeeper 127.0.0.1:$ZK_PORT)"
    return
  fi
  command -v clickhouse-server >/dev/null 2>&1 || install_clickhouse
  ensure_zookeeper_installed
  # Whatever part still runs is restarted with the rest: the nodes' configs name every port.
  stop_cluster quiet
  pick_cluster_ports
  write_cluster_env
  start_zookeeper
  for n in "${CLUSTER_NODES[@]}"; do start_node "$n"; done
  for n in "${CLUSTER_NODES[@]}"; do wait_for_node "$n"; done
  say "cluster: up in $((SECONDS - started)) s ($CLUSTER_NAME; URLs in $CLUSTER_ENV)"
}

stop_pid() {
  local pid=$1 what=$2
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_for 30 pid_gone "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    say "$what: did not stop within 30 s; killed pid $pid"
  else
    say "$what: stopped (pid $pid)"
  fi
}

stop_cluster() {
  local quiet=${1:-} n pid any=""
  load_cluster_env
  for n in "${CLUSTER_NODES[@]}"; do
    if pid="$(node_pid "$n")"; then
      stop_pid "$pid" "clickhouse shard 0$n"
      any=1
    fi
    rm -f "$(node_dir "$n")/clickhouse-server.pid"
  done
  if pid="$(zk_pid)"; then
    # setsid made it a group leader: the group is zkServer.sh and its java.
    kill -TERM -- "-$pid" 2>/dev/null || true
    stop_pid "$pid" "zookeeper"
    any=1
  fi
  rm -f "$ZK_PID_FILE"
  [[ -n "$any" || -n "$quiet" ]] || say "cluster: not running (nothing started by this script)"
}

# -------------------------------------------------------------------------------------- chromium

# Headless Chromium for the tests of pages (the GraphQL IDE, /docs), driven by playwright-core:
# Playwright's own browser download does not work offline, Debian's package does.
ensure_chromium() {
  if ! command -v chromium >/dev/null 2>&1; then
    say "chromium: not found; installing it from Debian (apt-get)"
    apt_install chromium
    command -v chromium >/dev/null 2>&1 || fail "chromium is still missing after apt-get install"
  fi
  say "chromium: installed ($(command -v chromium); the page tests start their own)"
}

case "${1:-start}" in
  start | "")
    ensure_postgres
    ensure_redis
    ensure_clickhouse
    ensure_sshd
    ensure_chromium
    ;;
  for-run)
    # What `scripts/start.sh` needs: PostgreSQL always; Redis and a local ClickHouse server only
    # when the configuration names them (the default is the embedded engine and no Redis).
    ensure_postgres
    case "${REDIS_URL:-}" in redis://127.0.0.1:$REDIS_PORT* | redis://localhost:$REDIS_PORT*) ensure_redis ;; esac
    case "${CLICKHOUSE_URL:-}" in http://127.0.0.1:$CH_HTTP_PORT* | http://localhost:$CH_HTTP_PORT*) ensure_clickhouse ;; esac
    ;;
  stop-clickhouse) stop_clickhouse ;;
  cluster) ensure_cluster ;;
  stop-cluster) stop_cluster ;;
  -h | --help) sed -n '2,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
  *) fail "unknown command '$1' (expected: start, for-run, stop-clickhouse, cluster, stop-cluster)" ;;
esac
