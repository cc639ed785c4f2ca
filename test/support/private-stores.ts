// Private PostgreSQL, Redis and ClickHouse servers for tests that stop and restart stores: the
// shared ones on 5432, 6379 and 8123 serve every other test (and other people) and must never be
// stopped. Each server listens on a free loopback port with its data under a temporary folder,
// and is stopped and removed by `close()`.
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "./wait.js";

const PG_BIN = "/usr/lib/postgresql/15/bin";

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export interface PrivateServer {
  url: string;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

/** As the `postgres` user when we are root: initdb and postgres refuse to run as root. */
function asPostgres(command: string, args: string[]): void {
  const root = process.getuid?.() === 0;
  execFileSync(root ? "runuser" : command, root ? ["-u", "postgres", "--", command, ...args] : args, {
    stdio: "ignore",
  });
}

export async function privatePostgres(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), "datahus-pg-"));
  const data = join(dir, "data");
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"]).toString().trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o755);
  asPostgres(`${PG_BIN}/initdb`, ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const port = await freePort();
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200`;
  const server: PrivateServer = {
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async start() {
      asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
    },
    async stop() {
      asPostgres(`${PG_BIN}/pg_ctl`, ["-D", data, "-m", "fast", "-w", "stop"]);
    },
    async close() {
      await server.stop().catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

/** Spawns a server in the foreground (its pid is ours to signal) and waits until `ready`. */
function foreground(command: string, args: string[]) {
  let child: ChildProcess | undefined;
  return {
    start() {
      child = spawn(command, args, { stdio: "ignore" });
    },
    async stop() {
      const running = child;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once("exit", resolve));
      running.kill("SIGTERM");
      const killer = setTimeout(() => running.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

export async function privateRedis(): Promise<PrivateServer> {
  const port = await freePort();
  const process = foreground("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", ""]);
  const url = `redis://127.0.0.1:${port}`;
  const server: PrivateServer = {
    url,
    async start() {
      process.start();
      await until("redis to listen", () => reachable(port), 10_000);
    },
    stop: () => process.stop(),
    close: () => process.stop(),
  };
  await server.start();
  return server;
}

/** ClickHouse 18.16 with a config like scripts/services.sh writes, on free ports. */
export async function privateClickHouse(): Promise<PrivateServer> {
  const dir = mkdtempSync(join(tmpdir(), "datahus-ch-"));
  for (const sub of ["data", "tmp", "user_files", "format_schemas", "log"]) mkdirSync(join(dir, sub));
  const [http, tcp] = [await freePort(), await freePort()];
  writeFileSync(
    join(dir, "config.xml"),
    `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/log/server.log</log><errorlog>${dir}/log/server.err.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <max_concurrent_queries>32</max_concurrent_queries>
  <keep_alive_timeout>10</keep_alive_timeout>
  <mark_cache_size>16777216</mark_cache_size>
  <uncompressed_cache_size>16777216</uncompressed_cache_size>
  <mlock_executable>false</mlock_executable>
</yandex>
`,
  );
  writeFileSync(
    join(dir, "users.xml"),
    `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>1000000000</max_memory_usage><max_threads>2</max_threads><log_queries>0</log_queries></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
  );
  const process = foreground("clickhouse-server", [`--config-file=${dir}/config.xml`]);
  const url = `http://127.0.0.1:${http}`;
  const server: PrivateServer = {
    url,
    async start() {
      process.start();
      await until(
        "clickhouse to answer /ping",
        () =>
          fetch(`${url}/ping`).then(
            (r) => r.ok,
            () => false,
          ),
        60_000,
        250,
      );
    },
    stop: () => process.stop(),
    async close() {
      await process.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}

function reachable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
