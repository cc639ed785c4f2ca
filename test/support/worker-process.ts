// Real datahus processes (`node dist/src/main.js worker` or `serve`) on a test stack's databases,
// for tests that kill workers or measure one. Needs `npm run build` first (scripts/test.sh runs it).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import type { TestStack } from "./stack.js";
import { until } from "./wait.js";

export const WORKER_MAIN = new URL("../../dist/src/main.js", import.meta.url).pathname;

/** The environment a process of the stack's deployment gets: the stack's stores and keys. */
function stackEnv(stack: TestStack, nodeOptions?: string): NodeJS.ProcessEnv {
  const c = stack.app.config;
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "warn",
    ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
    DATABASE_URL: c.DATABASE_URL,
    PGBOSS_SCHEMA: c.PGBOSS_SCHEMA,
    CLICKHOUSE_URL: c.CLICKHOUSE_URL,
    CLICKHOUSE_DATABASE: c.CLICKHOUSE_DATABASE,
    ...(c.REDIS_URL ? { REDIS_URL: c.REDIS_URL } : {}),
    REDIS_KEY_PREFIX: c.REDIS_KEY_PREFIX,
    ENCRYPTION_KEY: c.ENCRYPTION_KEY,
    JWT_SECRET: c.JWT_SECRET,
    OUTBOUND_ALLOW_PRIVATE: String(c.OUTBOUND_ALLOW_PRIVATE),
    OUTBOUND_ALLOW_CIDRS: c.OUTBOUND_ALLOW_CIDRS.join(","),
    ...(c.FILE_SOURCE_ROOT ? { FILE_SOURCE_ROOT: c.FILE_SOURCE_ROOT } : {}),
  };
}

function spawnMain(role: string, env: NodeJS.ProcessEnv, nodeArgs: string[] = []): ChildProcess {
  if (!existsSync(WORKER_MAIN)) throw new Error(`${WORKER_MAIN} is missing: run npm run build first`);
  return spawn(process.execPath, [...nodeArgs, WORKER_MAIN, role], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
}

export function spawnWorker(
  stack: TestStack,
  env: Record<string, string> = {},
  nodeOptions?: string,
): ChildProcess {
  // As deployed (Dockerfile): --expose-gc lets it collect the file bytes it relays (relay-collection.ts).
  return spawnMain("worker", { ...stackEnv(stack, nodeOptions), ...env }, ["--expose-gc"]);
}

/** A free loopback port (free when asked: another process may take it before it is used). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * `datahus serve` on the stack's stores, in a process of its own (its logs go nowhere), once it
 * answers /health; `nodeArgs` go to node before the script (V8 flags). The caller stops it (SIGTERM).
 */
export async function spawnApi(
  stack: TestStack,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<{ child: ChildProcess; url: string }> {
  const port = await freePort();
  const child = spawnMain(
    "serve",
    { ...stackEnv(stack), HOST: "127.0.0.1", PORT: String(port), ...env },
    nodeArgs,
  );
  const url = `http://127.0.0.1:${port}`;
  await until(
    "datahus serve to answer /health",
    async () => {
      if (child.exitCode !== null) throw new Error(`datahus serve exited with ${child.exitCode}`);
      return fetch(`${url}/health`).then(
        (response) => response.ok,
        () => false,
      );
    },
    120_000,
    200,
  );
  return { child, url };
}

/** A line of /proc/<pid>/status in bytes (a `kB` figure); 0 once the process has exited. */
function statusBytes(pid: number, field: "VmHWM" | "VmRSS"): number {
  try {
    const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(match?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The process's peak resident memory so far (Linux VmHWM), in bytes; 0 once it has exited. */
export const peakRss = (pid: number) => statusBytes(pid, "VmHWM");

/** The process's resident memory now (Linux VmRSS), in bytes; 0 once it has exited. */
export const residentMemory = (pid: number) => statusBytes(pid, "VmRSS");

/** CPU time the process has used so far (Linux /proc/<pid>/stat, user + system), in ms. */
export function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  // utime and stime are the 14th and 15th fields (12th and 13th after the name), in clock ticks.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}

/** USER_HZ: 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS_PER_SECOND = 100;
