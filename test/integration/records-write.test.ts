// The writer's RowBinary inserts on the real ClickHouse (whatever CLICKHOUSE_URL names): values at
// the edges of what each type holds, strings built to break text formats, and floats 18.16's text
// parser rounds wrongly, read back exactly as they were written.
import { pageFlag } from "../../src/pagination.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { createDatasetTable } from "../../src/catalog/dataset-table.js";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, sql } from "../../src/db/sql.js";
import { RecordsReader } from "../../src/records/records.reader.js";
import { RowStream, writeRecords, type DatasetRef } from "../../src/records/records.writer.js";
import { baseConfig, uniqueName } from "../support/databases.js";

const columns: Column[] = [
  { name: "id", type: "INT32", nullable: false },
  { name: "s", type: "STRING", nullable: false },
  { name: "s_opt", type: "STRING", nullable: true },
  { name: "big", type: "INT64", nullable: false },
  { name: "d38", type: "DECIMAL", precision: 38, scale: 10, nullable: false },
  { name: "d18", type: "DECIMAL", precision: 18, scale: 18, nullable: true },
  { name: "d9", type: "DECIMAL", precision: 9, scale: 0, nullable: false },
  { name: "f", type: "FLOAT64", nullable: true },
  { name: "b", type: "BOOLEAN", nullable: true },
  { name: "day", type: "DATE", nullable: false },
  { name: "ts", type: "DATETIME", nullable: true },
];

const STRINGS = [
  "",
  "\\N",
  "\\",
  "ends with a backslash\\",
  "\\t is not a tab",
  "tab\there",
  "line\nbreak",
  "crlf\r\nline",
  "lone\rreturn",
  "\"quoted\", 'single'",
  "a\0b",
  "Ωmega 数据 😀",
  "\t\n\\\r",
  "NULL",
];

// Each row in its JSON representation, as readers return it. (18.16 prints day 0 and second 0
// as 0000-00-00; readers turn that back into the epoch.)
const rows: Record<string, unknown>[] = STRINGS.map((s, i) => ({
  id: i,
  s,
  s_opt: i % 2 ? null : s,
  big: ["9223372036854775807", "-9223372036854775808", "9007199254740993", "0"][i % 4],
  d38: [
    "9999999999999999999999999999.9999999999",
    "-9999999999999999999999999999.9999999999",
    "0.0000000001",
    "12345678901234567890.1234567890",
  ][i % 4],
  d18: [null, "0.999999999999999999", "-0.000000000000000001", "0.000000000000000000"][i % 4],
  d9: ["999999999", "-999999999", "0", "1"][i % 4],
  f: [null, 0.1, -1.5e-300, 1e21][i % 4],
  b: [null, true, false][i % 3],
  day: ["1970-01-02", "2105-12-31", "2024-02-29", "1970-01-01"][i % 4],
  ts: [null, "1970-01-01T00:01:40Z", "1970-01-01T00:00:00Z", "2105-12-31T23:59:59Z", "2024-06-30T12:34:56Z"][
    i % 5
  ],
}));

/** Floats 18.16's text parser gets wrong, and the edges of the type. */
const HARD_FLOATS = [
  -114.6580911,
  4.983333333333333,
  2.857142857142857,
  -2.857142857142857,
  0.1,
  1 / 3,
  5e-324,
  -5e-324,
  2.2250738585072014e-308,
  2.225073858507201e-308,
  Number.MAX_VALUE,
  -Number.MAX_VALUE,
  Number.MIN_VALUE,
  2 ** 53 + 2,
  1e23,
  -0,
  0,
];

/** Doubles from random bits (every exponent) and random short decimals (what data holds). */
function randomFloats(count: number): number[] {
  let seed = 42;
  const next = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const out: number[] = [];
  const bits = new DataView(new ArrayBuffer(8));
  while (out.length < count) {
    bits.setUint32(0, next());
    bits.setUint32(4, next());
    const d = bits.getFloat64(0);
    if (Number.isFinite(d)) out.push(d);
    out.push(Number(((next() / 2 ** 32) * 1000 - 500).toFixed(1 + (next() % 15))));
  }
  return out;
}

const database = uniqueName("t");
const dataset: DatasetRef = { id: "tsv", tableName: "ds_tsv", columns, keyColumns: ["id"] };
let ch: ClickHouse;
let reader: RecordsReader;

beforeAll(async () => {
  ch = createClickHouse(baseConfig(), { database: "default" });
  await ch.command(sql`CREATE DATABASE ${ident(database)}`);
  await createDatasetTable(ch, database, dataset.tableName, columns);
  reader = new RecordsReader(ch, database, { maxLimit: 1000 });
});

afterAll(async () => {
  await ch?.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
  await ch?.close();
});

describe("records: RowBinary writes", () => {
  it("reads back every value exactly as written", async () => {
    await writeRecords(ch, database, dataset, rows, { version: 1, runId: "run\t1\\" });
    const page = await reader.page(dataset, { first: 100 });
    const byKey = [...rows].sort((a, b) => (String(a.id) < String(b.id) ? -1 : 1));
    expect(page.items.map((item) => item.values)).toEqual(byKey);
    const [stored] = await ch.query<{ run: string; n: string }>(
      sql`SELECT any(_run_id) AS run, toString(count()) AS n FROM ${ident(database, dataset.tableName)}`,
    );
    expect(stored).toEqual({ run: "run\t1\\", n: String(rows.length) });
    // NULL and the empty string stay apart, and the text "\N" is a string.
    expect(await reader.count(dataset, { column: "s_opt", isNull: true })).toBe(STRINGS.length / 2);
    expect(await reader.count(dataset, { column: "s", eq: "\\N" })).toBe(1);
    expect(await reader.count(dataset, { column: "s", eq: "" })).toBe(1);
  });

  it("stores every float bit for bit and reads it back in its shortest round-trip form", async () => {
    const ref: DatasetRef = {
      id: "floats",
      tableName: "ds_floats",
      columns: [
        { name: "id", type: "INT32", nullable: false },
        { name: "f", type: "FLOAT64", nullable: false },
      ],
      keyColumns: ["id"],
    };
    await createDatasetTable(ch, database, ref.tableName, ref.columns);
    const floats = [...HARD_FLOATS, ...randomFloats(3000)];
    await writeRecords(
      ch,
      database,
      ref,
      floats.map((f, id) => ({ id, f })),
      { version: 1, runId: "floats" },
    );
    const read = new Map<number, unknown>();
    let after: string | undefined;
    for (;;) {
      const page = await reader.page(ref, { first: 1000, after });
      for (const item of page.items) read.set(item.values.id as number, item.values.f);
      if (!(await pageFlag(page.hasNextPage))) break;
      after = page.cursors.at(-1);
    }
    const wrong = floats.filter((f, id) => !Object.is(read.get(id), f === 0 ? 0 : f));
    expect(wrong).toEqual([]);
    // What the server holds is the value itself, not a neighbour that prints the same.
    const [bits] = await ch.query<{ n: string }>(
      sql`SELECT toString(count()) AS n FROM ${ident(database, ref.tableName)} WHERE f = reinterpretAsFloat64(unhex('7912222A1EAA5CC0'))`,
    );
    expect(bits!.n).toBe("1");
  });

  it("writes tombstones that hide their keys, other columns defaulted", async () => {
    await writeRecords(ch, database, dataset, [{ id: 1 }, { id: 2 }], {
      version: 2,
      runId: "delete",
      deleted: true,
    });
    const page = await reader.page(dataset, { first: 100 });
    expect(page.items.map((item) => item.values.id).sort((a, b) => Number(a) - Number(b))).toEqual(
      rows.map((r) => r.id).filter((id) => id !== 1 && id !== 2),
    );
  });

  it("streams rows through several inserts, and ends an insert whose rows stopped coming", async () => {
    const ref: DatasetRef = { ...dataset, tableName: "ds_stream" };
    await createDatasetTable(ch, database, ref.tableName, columns);
    const count = async () => {
      const [row] = await ch.query<{ n: string }>(
        sql`SELECT toString(count()) AS n FROM ${ident(database, ref.tableName)}`,
      );
      return Number(row!.n);
    };
    let stored = 0;
    const stream = new RowStream(ch, database, ref, {
      runId: "stream",
      rowsPerInsert: 4,
      onStored: (n) => (stored += n),
    });
    for (const row of rows.slice(0, 10)) await stream.write(row);
    // Two full inserts were ended; two rows wait in the third until rows stop for a while.
    await expect.poll(count, { timeout: 5_000, interval: 100 }).toBe(10);
    expect(stored).toBe(10);
    for (const row of rows.slice(10)) await stream.write(row);
    await stream.finish();
    expect(await count()).toBe(rows.length);
    expect(stored).toBe(rows.length);
  });
});
