// Usage events on the real ClickHouse, in a database of its own (dropped afterwards).
import { randomBytes, randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordUsage, usageReport } from "../../src/credits/usage.js";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { migrateClickHouse } from "../../src/db/clickhouse-migrations.js";
import { ident, sql } from "../../src/db/sql.js";
import { AppError } from "../../src/errors.js";
import { baseConfig } from "../support/databases.js";

const config = baseConfig();
const database = `t_${randomBytes(6).toString("hex")}`;
let admin: ClickHouse;
let ch: ClickHouse;

const account = randomUUID();
const otherAccount = randomUUID();
const datasetA = randomUUID();
const datasetB = randomUUID();
const day = (d: number, time = "12:00:00") => new Date(`2031-05-${String(d).padStart(2, "0")}T${time}.000Z`);

beforeAll(async () => {
  admin = createClickHouse(config, { database: "default" });
  await migrateClickHouse(admin, database);
  ch = admin.withDatabase(database);

  const base = { accountId: account, apiKeyId: randomUUID(), durationMs: 12.7 };
  const events = [
    { ...base, datasetId: datasetA, operation: "records", records: 100, credits: 5n, at: day(1, "00:00:00") },
    { ...base, datasetId: datasetA, operation: "records", records: 40, credits: 5, at: day(1, "23:59:59") },
    { ...base, datasetId: datasetA, operation: "aggregate", records: 0, credits: 5n, at: day(2) },
    { ...base, datasetId: datasetB, operation: "record", records: 1, credits: 2n, at: day(3) },
    // Outside the range asked for below: the end is exclusive.
    {
      ...base,
      datasetId: datasetB,
      operation: "records",
      records: 999,
      credits: 99n,
      at: day(4, "00:00:00"),
    },
    // Another account's usage never shows.
    {
      ...base,
      accountId: otherAccount,
      datasetId: datasetA,
      operation: "records",
      records: 7,
      credits: 7n,
      at: day(2),
    },
  ];
  for (const [i, event] of events.entries()) await recordUsage(ch, { ...event, requestId: `req-${i}` });
});

afterAll(async () => {
  await ch?.close();
  await admin?.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
  await admin?.close();
});

const range = { from: day(1, "00:00:00"), to: day(4, "00:00:00") };

describe("recordUsage", () => {
  it("stores one row per event with every column", async () => {
    const rows = await ch.query<Record<string, unknown>>(
      sql`SELECT * FROM ${ident(ch.database, "usage_events")} WHERE request_id = ${"req-0"}`,
    );
    expect(rows).toEqual([
      {
        account_id: account,
        api_key_id: expect.any(String),
        dataset_id: datasetA,
        operation: "records",
        records: "100",
        credits: "5",
        duration_ms: 13,
        request_id: "req-0",
        occurred_at: "2031-05-01 00:00:00",
      },
    ]);
  });

  it("stores an event without an API key, at the current time by default", async () => {
    const before = Math.floor(Date.now() / 1000);
    await recordUsage(ch, {
      accountId: randomUUID(),
      datasetId: datasetA,
      operation: "export",
      records: 3,
      credits: 1,
      durationMs: 5,
      requestId: "req-now",
    });
    const [row] = await ch.query<{ api_key_id: string; at: string }>(
      sql`SELECT api_key_id, toUnixTimestamp(occurred_at) AS at FROM ${ident(ch.database, "usage_events")} WHERE request_id = ${"req-now"}`,
    );
    expect(row?.api_key_id).toBe("");
    expect(Number(row?.at)).toBeGreaterThanOrEqual(before);
    expect(Number(row?.at)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000));
  });
});

describe("usageReport", () => {
  it("groups by UTC day", async () => {
    expect(await usageReport(ch, account, { ...range, groupBy: "DAY" })).toEqual([
      { group: "2031-05-01", requests: 2, records: 140, credits: 10 },
      { group: "2031-05-02", requests: 1, records: 0, credits: 5 },
      { group: "2031-05-03", requests: 1, records: 1, credits: 2 },
    ]);
  });

  it("groups by dataset", async () => {
    const rows = await usageReport(ch, account, { ...range, groupBy: "DATASET" });
    expect(rows).toEqual(
      [
        { group: datasetA, requests: 3, records: 140, credits: 15 },
        { group: datasetB, requests: 1, records: 1, credits: 2 },
      ].sort((a, b) => a.group.localeCompare(b.group)),
    );
  });

  it("groups by operation", async () => {
    expect(await usageReport(ch, account, { ...range, groupBy: "OPERATION" })).toEqual([
      { group: "aggregate", requests: 1, records: 0, credits: 5 },
      { group: "record", requests: 1, records: 1, credits: 2 },
      { group: "records", requests: 2, records: 140, credits: 10 },
    ]);
  });

  it("is empty for an account or a range without usage", async () => {
    expect(await usageReport(ch, randomUUID(), { ...range, groupBy: "DAY" })).toEqual([]);
    const empty = { from: day(10), to: day(11), groupBy: "OPERATION" as const };
    expect(await usageReport(ch, account, empty)).toEqual([]);
  });

  it("treats hostile ids as values", async () => {
    const hostile = "x' OR 1=1 --\\";
    expect(await usageReport(ch, hostile, { ...range, groupBy: "DAY" })).toEqual([]);
  });

  it("rejects a reversed range and an unknown grouping", async () => {
    const reversed = usageReport(ch, account, { from: range.to, to: range.from, groupBy: "DAY" });
    await expect(reversed).rejects.toMatchObject({ code: "BAD_USER_INPUT" });
    const unknown = usageReport(ch, account, { ...range, groupBy: "HOUR" as "DAY" });
    await expect(unknown).rejects.toBeInstanceOf(AppError);
  });
});
