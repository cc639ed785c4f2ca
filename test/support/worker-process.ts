// A real worker process (`node dist/src/main.js worker`) on a test stack's databases, for tests
// that kill workers or measure one. Needs `npm run build` first (scripts/test.sh runs it).
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import type { TestStack } from "./stack.js";

export const WORKER_MAIN = new URL("../../dist/src/main.js", import.meta.url).pathname;

export function spawnWorker(
  stack: TestStack,
  env: Record<string, string> = {},
  nodeOptions?: string,
): ChildProcess {
  if (!existsSync(WORKER_MAIN)) throw new Error(`${WORKER_MAIN} is missing: run npm run build first`);
  const c = stack.app.config;
  return spawn(process.execPath, [WORKER_MAIN, "worker"], {
    env: {
      NODE_ENV: "test",
      LOG_LEVEL: "warn",
      ...(nodeOptions ? { NODE_OPTIONS: nodeOptions } : {}),
      DATABASE_URL: c.DATABASE_URL,
      PGBOSS_SCHEMA: c.PGBOSS_SCHEMA,
      CLICKHOUSE_URL: c.CLICKHOUSE_URL,
      CLICKHOUSE_DATABASE: c.CLICKHOUSE_DATABASE,
      REDIS_URL: c.REDIS_URL,
      REDIS_KEY_PREFIX: c.REDIS_KEY_PREFIX,
      ENCRYPTION_KEY: c.ENCRYPTION_KEY,
      OUTBOUND_ALLOW_PRIVATE: String(c.OUTBOUND_ALLOW_PRIVATE),
      OUTBOUND_ALLOW_CIDRS: c.OUTBOUND_ALLOW_CIDRS.join(","),
      ...(c.FILE_SOURCE_ROOT ? { FILE_SOURCE_ROOT: c.FILE_SOURCE_ROOT } : {}),
      ...env,
    },
    stdio: ["ignore", "ignore", "inherit"],
  });
}

/** The process's peak resident memory so far (Linux VmHWM), in bytes; 0 once it has exited. */
export function peakRss(pid: number): number {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return Number(match?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
