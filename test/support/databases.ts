// Each test file gets its own PostgreSQL database (cloned from a migrated template, ~100 ms) and
// its own ClickHouse database, so files run in parallel and never see each other's rows.
import { randomBytes } from "node:crypto";
import pg from "pg";
import { describe, inject, it } from "vitest";
import { loadConfig, type Config, type Env } from "../../src/config.js";
import { clickHouseEngine } from "../../src/db/clickhouse.js";

// Tests talk to loopback servers (sshd, s3rver, HTTP receivers, the local PostgreSQL), so they
// allow loopback explicitly; a test proving the production policy passes OUTBOUND_ALLOW_CIDRS: "".
export const TEST_OUTBOUND_ALLOW_CIDRS = "127.0.0.0/8,::1/128";

// The suite runs on the ClickHouse server by default and on the embedded engine when
// scripts/test.sh says so (CLICKHOUSE_URL=embedded:, a temporary directory per test process);
// Redis is on, as in a deployment of separate API and worker processes.
const TEST_SERVICES = { CLICKHOUSE_URL: "http://127.0.0.1:8123", REDIS_URL: "redis://127.0.0.1:6379" };

export function baseConfig(overrides: Env = {}): Config {
  return loadConfig({
    OUTBOUND_ALLOW_CIDRS: TEST_OUTBOUND_ALLOW_CIDRS,
    ...TEST_SERVICES,
    ...process.env,
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    ...overrides,
  } as Record<string, string | undefined>);
}

/** True when this run's ClickHouse is the engine embedded in the test process. */
export const embeddedEngine = clickHouseEngine(baseConfig().CLICKHOUSE_URL).kind === "embedded";

/**
 * For tests that need a second process on the same ClickHouse (a killed worker, two API
 * processes): the embedded engine belongs to one process, so they run against the server only.
 */
export const describeOnServer = describe.skipIf(embeddedEngine);
export const itOnServer = it.skipIf(embeddedEngine);

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  return parsed.toString();
}

export const uniqueName = (prefix: string) =>
  `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString("hex")}`;

/** Runs statements on the server's maintenance database (CREATE/DROP DATABASE). */
export async function onServer(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: withDatabase(url, "postgres") });
  await client.connect();
  try {
    for (const statement of statements) await client.query(statement);
  } finally {
    await client.end();
  }
}

export async function freshPostgres(config: Config): Promise<{ url: string; drop(): Promise<void> }> {
  const name = uniqueName("t");
  await onServer(config.DATABASE_URL, [`CREATE DATABASE "${name}" TEMPLATE "${inject("templateDatabase")}"`]);
  return {
    url: withDatabase(config.DATABASE_URL, name),
    drop: () => dropWhenIdle(config.DATABASE_URL, name),
  };
}

/**
 * Drops a test database once its connections have closed. Pools close their sockets a moment
 * after `end()` resolves; forcing the drop then kills a socket still closing, and pg reports that
 * as an unhandled error in whichever test file is running. FORCE only as a last resort.
 */
async function dropWhenIdle(url: string, name: string): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      await onServer(url, [`DROP DATABASE IF EXISTS "${name}"`]);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== "55006") throw error; // object in use
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  await onServer(url, [`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`]);
}
