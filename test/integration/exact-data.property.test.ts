// The property behind issue 11 on the real stack: random rows of every column type (floats that
// text parsers get wrong, subnormals and extremes; dates at both ends of the range; text outside
// the BMP; decimals at their limits), written as CSV, NDJSON and Parquet (by DuckDB), loaded through
// a FILE source and a pipeline, and read back through GraphQL and the export: every value
// identical, counters adding up. Seeded, so a failure repeats.
import { DuckDBInstance } from "@duckdb/node-api";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { PublishDatasetDocument, RecordsDocument } from "../generated/graphql.js";
import { uniqueName } from "../support/databases.js";
import { ok } from "../support/publishing.js";
import type { TestAccount, TestStack } from "../support/stack.js";
import { startFileStack, type FileStack } from "../support/file-stack.js";

const ROWS = 80;
const SEED = 20261204;

let files: FileStack;
let stack: TestStack;
let root: string;
let publisher: TestAccount;
let pub: FileStack["pub"];

beforeAll(async () => {
  files = await startFileStack("property", { PIPELINE_BATCH_ROWS: "100" });
  ({ stack, root, publisher, pub } = files);
}, 60_000);

afterAll(() => files?.close());

const COLUMNS = [
  { name: "id", type: "INT32" as const, nullable: false },
  { name: "s", type: "STRING" as const, nullable: false },
  { name: "i32", type: "INT32" as const, nullable: false },
  { name: "i64", type: "INT64" as const, nullable: false },
  { name: "f", type: "FLOAT64" as const, nullable: false },
  { name: "d38", type: "DECIMAL" as const, precision: 38, scale: 10, nullable: false },
  { name: "d9", type: "DECIMAL" as const, precision: 9, scale: 2, nullable: true },
  { name: "b", type: "BOOLEAN" as const, nullable: false },
  { name: "day", type: "DATE" as const, nullable: false },
  { name: "at", type: "DATETIME" as const, nullable: false },
];

type Row = Record<string, string | number | boolean | null>;

function generator(seed: number) {
  let state = seed >>> 0;
  const u32 = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  const pick = <T>(xs: readonly T[]): T => xs[u32() % xs.length]!;
  const digits = (n: number) => Array.from({ length: n }, () => String(u32() % 10)).join("");
  const bits = new DataView(new ArrayBuffer(8));
  const float = (): number => {
    const hard = [
      -114.6580911,
      4.983333333333333,
      2.857142857142857,
      5e-324,
      -5e-324,
      Number.MAX_VALUE,
      -Number.MAX_VALUE,
      2.2250738585072014e-308,
      0.1,
      1e23,
    ];
    if (u32() % 3 === 0) return pick(hard);
    if (u32() % 2 === 0) return Number(((u32() / 2 ** 32) * 2000 - 1000).toFixed(1 + (u32() % 14)));
    for (;;) {
      bits.setUint32(0, u32());
      bits.setUint32(4, u32());
      const d = bits.getFloat64(0);
      if (Number.isFinite(d) && !Object.is(d, -0)) return d;
    }
  };
  const text = () => {
    const parts = [
      "a",
      "Z",
      " ",
      ",",
      '"',
      "'",
      "\n",
      "\r\n",
      "\t",
      "\\",
      "é",
      "東京",
      "😀",
      "𝄞",
      "\u0000",
      "x",
    ];
    return Array.from({ length: u32() % 12 }, () => pick(parts)).join("");
  };
  // Both ends of the range (README, "Column types"), and either side of 1970 and of 2106 (where
  // ClickHouse's Date and DateTime end).
  const day = () =>
    pick([
      "1900-01-01",
      "1969-12-31",
      "2299-12-31",
      `${1900 + (u32() % 400)}-0${1 + (u32() % 9)}-1${u32() % 9}`,
    ]);
  const FROM_1900 = Date.UTC(1900, 0, 1) / 1000;
  const seconds = () =>
    pick([
      "1900-01-01T00:00:00Z",
      "1969-12-31T23:59:59Z",
      "2106-01-01T00:00:00Z",
      "2299-12-31T23:59:59Z",
      // 146,097 days from 1900-01-01 is 2300-01-01.
      new Date((FROM_1900 + (u32() % 146_097) * 86_400 + (u32() % 86_400)) * 1000)
        .toISOString()
        .slice(0, 19) + "Z",
    ]);
  const decimal38 = () => {
    const sign = u32() % 2 ? "-" : "";
    return pick([
      `${sign}${"9".repeat(28)}.${"9".repeat(10)}`,
      "0.0000000001",
      `${sign}${digits(1 + (u32() % 28)).replace(/^0+(?=\d)/, "")}.${digits(10)}`,
    ]);
  };
  const row = (id: number): Row => ({
    id,
    s: text(),
    i32: pick([-2147483648, 2147483647, 0, (u32() | 0) as number]),
    i64: pick([
      "-9223372036854775808",
      "9223372036854775807",
      "0",
      BigInt.asIntN(64, (BigInt(u32()) << 32n) | BigInt(u32())).toString(),
    ]),
    f: float(),
    d38: decimal38(),
    d9:
      u32() % 4 === 0 ? null : pick(["9999999.99", "-9999999.99", "0.01", `${u32() % 1000000}.${digits(2)}`]),
    b: u32() % 2 === 0,
    day: day(),
    at: seconds(),
  });
  return { row };
}

const canonical = (row: Row): Row => ({
  ...row,
  i64: BigInt(row.i64 as string).toString(),
  d38: row.d38 === "-0.0000000000" ? "0.0000000000" : row.d38!,
});

function csvOf(rows: Row[]): string {
  const field = (v: Row[string]) =>
    v === null ? "" : typeof v === "string" ? `"${v.replaceAll('"', '""')}"` : String(v);
  return `${COLUMNS.map((c) => c.name).join(",")}\r\n${rows.map((r) => COLUMNS.map((c) => field(r[c.name]!)).join(",")).join("\r\n")}\r\n`;
}

const ndjsonOf = (rows: Row[]) => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";

async function parquetOf(rows: Row[]): Promise<Buffer> {
  const json = join(root, `${uniqueName("rows")}.ndjson`);
  const out = join(root, `${uniqueName("rows")}.parquet`);
  await writeFile(json, ndjsonOf(rows));
  const duck = await (await DuckDBInstance.create(":memory:")).connect();
  await duck.run(`COPY (
    SELECT id, s, i32, CAST(i64 AS BIGINT) AS i64, f, CAST(d38 AS DECIMAL(38,10)) AS d38,
      CAST(d9 AS DECIMAL(9,2)) AS d9, b, CAST("day" AS DATE) AS "day",
      CAST(replace(replace("at", 'T', ' '), 'Z', '') AS TIMESTAMP) AS "at"
    FROM read_json('${json}', format = 'newline_delimited', columns = {
      'id': 'INTEGER', 's': 'VARCHAR', 'i32': 'INTEGER', 'i64': 'VARCHAR', 'f': 'DOUBLE', 'd38': 'VARCHAR',
      'd9': 'VARCHAR', 'b': 'BOOLEAN', 'day': 'VARCHAR', 'at': 'VARCHAR'
    })
  ) TO '${out}' (FORMAT parquet, COMPRESSION zstd)`);
  duck.closeSync();
  return readFile(out);
}

async function readBack(dataset: { id: string; slug: string }) {
  const graphql: Row[] = [];
  let after: string | null | undefined;
  for (;;) {
    const res = ok(
      await stack.graphql(RecordsDocument, { slug: dataset.slug, first: 100, after }, publisher.headers),
    );
    graphql.push(...res.dataset!.records.edges.map((e) => e.node.values as Row));
    if (!res.dataset!.records.pageInfo.hasNextPage) break;
    after = res.dataset!.records.pageInfo.endCursor;
  }
  ok(await stack.graphql(PublishDatasetDocument, { id: dataset.id }, publisher.headers));
  const res = await fetch(`${stack.url}/api/v1/data/export?dataset=${dataset.slug}&format=ndjson`, {
    headers: publisher.headers,
  });
  const exported = (await res.text())
    .split("\n")
    .filter(Boolean)
    .map((line) => {
      const { _key, ...values } = JSON.parse(line) as Row;
      return values;
    });
  const byId = (rows: Row[]) => [...rows].sort((a, b) => Number(a.id) - Number(b.id));
  return { graphql: byId(graphql), exported: byId(exported) };
}

it("loads random rows of every type exactly, from CSV, NDJSON and Parquet", async () => {
  const { row } = generator(SEED);
  const rows = Array.from({ length: ROWS }, (_, id) => row(id));
  const expected = rows.map(canonical);
  const files: [string, string | Buffer][] = [
    ["rows.csv", csvOf(rows)],
    ["rows.ndjson", ndjsonOf(rows)],
    ["rows.parquet", await parquetOf(rows)],
  ];
  for (const [name, content] of files) {
    const file = `${uniqueName("p")}-${name}`;
    await writeFile(join(root, file), content);
    const dataset = await pub.dataset(COLUMNS);
    const source = await pub.source("FILE", { path: file });
    const pipelineId = await pub.pipeline(source, dataset.id, "FULL_REFRESH", [
      { op: "cast", field: "b", to: "BOOLEAN" },
    ]);
    const run = await pub.finished(await pub.run(pipelineId), 60_000);
    expect(
      run.rejectedRows.edges.map((e) => e.node),
      name,
    ).toEqual([]);
    expect(run, name).toMatchObject({ status: "SUCCEEDED", rowsRead: ROWS, rowsWritten: ROWS });
    expect(run.rowsRead).toBe(run.rowsWritten + run.rowsRejected + run.rowsFiltered + run.rowsDuplicate);
    const { graphql, exported } = await readBack(dataset);
    expect(graphql, `${name} through GraphQL`).toEqual(expected);
    expect(exported, `${name} through the export`).toEqual(expected);
  }
}, 300_000);
