// Aggregates over recent windows on the real ClickHouse (both engines): known events stamped
// around a fixed `now`, counted per minute over the last 5 minutes, per hour over the last day,
// with a filter on top; windows and MINUTE buckets refused where they make no sense.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { createDatasetTable } from "../../src/catalog/dataset-table.js";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, sql } from "../../src/db/sql.js";
import { RecordsReader } from "../../src/records/records.reader.js";
import { writeRecords, type DatasetRef } from "../../src/records/records.writer.js";
import { baseConfig, uniqueName } from "../support/databases.js";

const config = baseConfig();
const database = uniqueName("t");
const columns: Column[] = [
  { name: "id", type: "INT32", nullable: false },
  { name: "kind", type: "STRING", nullable: false },
  { name: "at", type: "DATETIME", nullable: false },
  { name: "day", type: "DATE", nullable: false },
];
const dataset: DatasetRef = { id: "ds-window", tableName: "events", columns, keyColumns: ["id"] };
/** The clock every query here is read at: 12:34:30 UTC. */
const NOW = new Date(Date.UTC(2026, 11, 4, 12, 34, 30));
let ch: ClickHouse;
let reader: RecordsReader;

/** Seconds before NOW of each event; `kind` alternates click, view. */
const AGO = [5, 20, 29, 31, 70, 100, 130, 200, 299, 300, 301, 900, 3599, 3601, 7200, 86_399, 86_401];
const iso = (secondsAgo: number) =>
  new Date(NOW.getTime() - secondsAgo * 1000).toISOString().slice(0, 19) + "Z";

beforeAll(async () => {
  ch = createClickHouse(config, { database: "default" });
  await ch.command(sql`CREATE DATABASE ${ident(database)}`);
  await createDatasetTable(ch, database, dataset.tableName, columns);
  reader = new RecordsReader(ch, database, { maxLimit: 1000 });
  const rows = AGO.map((ago, i) => ({
    id: i + 1,
    kind: i % 2 ? "view" : "click",
    at: iso(ago),
    day: iso(ago).slice(0, 10),
  }));
  // One event in the future (a clock ahead): in no window.
  rows.push({ id: 100, kind: "click", at: iso(-60), day: iso(-60).slice(0, 10) });
  await writeRecords(ch, database, dataset, rows, { version: 1, runId: "run-1" });
}, 60_000);

afterAll(async () => {
  await ch?.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
  await ch?.close();
});

/** What the window should count, from the model: stamped in [NOW - span, NOW], by bucket start. */
function expected(spanSeconds: number, bucketSeconds: number, kind?: string) {
  const counts = new Map<string, number>();
  AGO.forEach((ago, i) => {
    if (ago > spanSeconds || (kind && (i % 2 ? "view" : "click") !== kind)) return;
    const ms = NOW.getTime() - ago * 1000;
    const start = new Date(Math.floor(ms / 1000 / bucketSeconds) * bucketSeconds * 1000);
    const key = start.toISOString().slice(0, 19) + "Z";
    counts.set(key, (counts.get(key) ?? 0) + 1);
  });
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([at, count]) => ({ at, count }));
}

async function perBucket(last: string, bucket: "MINUTE" | "HOUR", filter?: Record<string, unknown>) {
  const page = await reader.aggregate(
    dataset,
    {
      groupBy: [{ column: "at", bucket }],
      metrics: [{ fn: "COUNT", alias: "count" }],
      window: { column: "at", last },
      filter: filter ?? null,
      first: 1000,
    },
    NOW,
  );
  return page.items.map((item) => ({ at: item.group.at, count: item.metrics.count }));
}

describe("aggregates over a recent window", () => {
  it("counts events per minute over the last 5 minutes", async () => {
    const rows = await perBucket("5m", "MINUTE");
    expect(rows).toEqual(expected(300, 60));
    // 5, 20, 29, 31, 70, 100, 130, 200, 299 and 300 seconds ago; not 301, not the future one.
    expect(rows.reduce((sum, r) => sum + Number(r.count), 0)).toBe(10);
    expect(rows.at(-1)).toEqual({ at: "2026-12-04T12:34:00Z", count: 3 });
  });

  it("counts per hour over 1h and 24h, and per minute with a filter", async () => {
    expect(await perBucket("1h", "HOUR")).toEqual(expected(3600, 3600));
    expect(await perBucket("24h", "HOUR")).toEqual(expected(86_400, 3600));
    expect(await perBucket("90s", "MINUTE", { column: "kind", eq: "click" })).toEqual(
      expected(90, 60, "click"),
    );
  });

  it("takes a window without groupBy: one total", async () => {
    const page = await reader.aggregate(
      dataset,
      { metrics: [{ fn: "COUNT", alias: "n" }], window: { column: "at", last: "1h" }, first: 10 },
      NOW,
    );
    expect(page.items).toEqual([{ group: {}, metrics: { n: 13 } }]);
  });

  it("refuses windows and buckets that make no sense, naming the argument", async () => {
    const refused = async (args: Parameters<RecordsReader["aggregate"]>[1]) => {
      const error = await reader.aggregate(dataset, args, NOW).then(
        () => null,
        (e: unknown) => e as { code: string; message: string; details?: Record<string, unknown> },
      );
      expect(error?.code).toBe("BAD_USER_INPUT");
      return error!.message;
    };
    const count = [{ fn: "COUNT" as const }];
    expect(await refused({ metrics: count, window: { column: "day", last: "1h" }, first: 1 })).toMatch(
      /window.*DATETIME/,
    );
    expect(await refused({ metrics: count, window: { column: "nope", last: "1h" }, first: 1 })).toMatch(
      /unknown column/,
    );
    for (const last of ["5", "1w", "0m", "1.5h", "-1h", "367d", " 5m"]) {
      expect(await refused({ metrics: count, window: { column: "at", last }, first: 1 })).toMatch(
        /Invalid window/,
      );
    }
    expect(
      await refused({ metrics: count, groupBy: [{ column: "day", bucket: "MINUTE" }], first: 1 }),
    ).toMatch(/MINUTE needs a DATETIME/);
  });
});
