import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { clickHouseMigrations, migrateClickHouse } from "../../src/db/clickhouse-migrations.js";
import { ident, sql } from "../../src/db/sql.js";
import { baseConfig } from "../support/databases.js";

const config = baseConfig();

describe("migrateClickHouse", () => {
  // A database of its own, so the file can run in parallel with others and leaves nothing behind.
  const database = `t_${randomBytes(6).toString("hex")}`;
  let ch: ClickHouse;
  const allVersions = clickHouseMigrations.map((m) => m.version);

  beforeAll(() => {
    // The target database does not exist yet, so connect to `default`.
    ch = createClickHouse(config, { database: "default" });
  });

  afterAll(async () => {
    await ch.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
    await ch.close();
  });

  it("creates the database and applies every migration in order", async () => {
    expect(await migrateClickHouse(ch, database)).toEqual({ applied: allVersions });
  });

  it("applies nothing the second time", async () => {
    expect(await migrateClickHouse(ch, database)).toEqual({ applied: [] });
  });

  it("records each version once, with its name", async () => {
    const rows = await ch.query<{ version: number; name: string }>(
      sql`SELECT version, name FROM ${ident(database, "schema_migrations")} FINAL ORDER BY version`,
    );
    expect(rows).toEqual(clickHouseMigrations.map(({ version, name }) => ({ version, name })));
  });

  it("creates the tables", async () => {
    const rows = await ch.query<{ name: string; engine: string }>(
      sql`SELECT name, engine FROM system.tables WHERE database = ${database} ORDER BY name`,
    );
    expect(rows).toEqual([
      { name: "quarantine", engine: "MergeTree" },
      { name: "schema_migrations", engine: "ReplacingMergeTree" },
      { name: "usage_events", engine: "MergeTree" },
    ]);
  });

  it("is harmless when two processes migrate at once, or after a crash mid-way", async () => {
    const racing = `${database}_race`;
    const other = createClickHouse(config, { database: "default" });
    try {
      const results = await Promise.all([migrateClickHouse(ch, racing), migrateClickHouse(other, racing)]);
      for (const { applied } of results) expect(applied.every((v) => allVersions.includes(v))).toBe(true);
      // A crash after the DDL but before recording it: the version runs again without error.
      await ch.command(sql`DROP TABLE ${ident(racing, "schema_migrations")}`);
      expect(await migrateClickHouse(ch, racing)).toEqual({ applied: allVersions });
      const versions = await ch.query<{ version: number }>(
        sql`SELECT DISTINCT version FROM ${ident(racing, "schema_migrations")} ORDER BY version`,
      );
      expect(versions.map((r) => r.version)).toEqual(allVersions);
    } finally {
      await ch.command(sql`DROP DATABASE IF EXISTS ${ident(racing)}`);
      await other.close();
    }
  });

  it("works through a connection to the database it is about to create", async () => {
    const fresh = `${database}_own`;
    const own = createClickHouse(config, { database: fresh });
    try {
      expect(await migrateClickHouse(own, fresh)).toEqual({ applied: allVersions });
      const rows = await own.query<{ n: string }>(
        sql`SELECT count() AS n FROM ${ident(fresh, "usage_events")}`,
      );
      expect(rows).toEqual([{ n: "0" }]);
    } finally {
      await ch.command(sql`DROP DATABASE IF EXISTS ${ident(fresh)}`);
      await own.close();
    }
  });

  it("stores and reads a usage event", async () => {
    const events = createClickHouse(config, { database });
    try {
      await events.insert("usage_events", [
        {
          account_id: "acc_1",
          api_key_id: "key_1",
          dataset_id: "ds'1",
          operation: "records",
          records: 18446744073709551615n,
          credits: -9223372036854775808n,
          duration_ms: 12,
          request_id: "req_1",
          occurred_at: new Date("2024-03-01T10:20:30.456Z"),
          ignored_extra_field: true,
        },
      ]);
      const rows = await events.query<Record<string, unknown>>(
        sql`SELECT *, toUnixTimestamp(occurred_at) AS ts FROM ${ident(events.database, "usage_events")} WHERE account_id = ${"acc_1"}`,
      );
      expect(rows).toEqual([
        {
          account_id: "acc_1",
          api_key_id: "key_1",
          dataset_id: "ds'1",
          operation: "records",
          records: "18446744073709551615",
          credits: "-9223372036854775808",
          duration_ms: 12,
          request_id: "req_1",
          occurred_at: "2024-03-01 10:20:30",
          ts: Date.UTC(2024, 2, 1, 10, 20, 30) / 1000,
        },
      ]);
    } finally {
      await events.close();
    }
  });

  it("stores quarantined rows with their reasons", async () => {
    await ch.insert(ident(database, "quarantine"), [
      {
        dataset_id: "ds_1",
        run_id: "run_1",
        row_number: 7,
        raw: JSON.stringify({ price: "abc", note: 'it\'s "quoted"\n' }),
        reasons: ["price: not a number", "note: too long"],
        quarantined_at: "2024-03-01 10:20:30",
      },
    ]);
    const rows = await ch.query<{ raw: string; reasons: string[] }>(
      sql`SELECT raw, reasons FROM ${ident(database, "quarantine")} WHERE run_id = ${"run_1"}`,
    );
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0]!.raw)).toEqual({ price: "abc", note: 'it\'s "quoted"\n' });
    expect(rows[0]!.reasons).toEqual(["price: not a number", "note: too long"]);
  });
});
