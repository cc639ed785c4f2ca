// DATE and DATETIME from 1900-01-01 to 2299-12-31 on both engines (issue 11; README, "Column
// types"): loaded through a FILE source and a pipeline, read back through GraphQL records,
// filters, keyset pages, aggregate buckets and the export, value for value; out-of-range values
// quarantined naming the range. Datasets made before the wide range keep Date/DateTime.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AggregateDocument,
  CreatePipelineDocument,
  PublishDatasetDocument,
  RecordsDocument,
  type RecordFilterInput,
  type TimeBucket,
} from "../generated/graphql.js";
import { sql } from "../../src/db/sql.js";
import { createDatasetTable, dropDatasetTable } from "../../src/catalog/dataset-table.js";
import type { Column } from "../../src/catalog/columns.js";
import { uniqueName } from "../support/databases.js";
import { ok } from "../support/publishing.js";
import { startFileStack, type FileStack } from "../support/file-stack.js";

let f: FileStack;
beforeAll(async () => {
  f = await startFileStack("dates");
}, 60_000);
afterAll(() => f?.close());

const COLUMNS = [
  { name: "id", type: "INT32" as const, nullable: false },
  { name: "d", type: "DATE" as const, nullable: false },
  { name: "t", type: "DATETIME" as const, nullable: true },
];

const ROWS = [
  { id: 1, d: "1900-01-01", t: "1900-01-01T00:00:01Z" },
  { id: 2, d: "1969-12-31", t: "1969-12-31T23:59:59Z" },
  { id: 3, d: "1970-01-01", t: "1970-01-01T00:00:00Z" },
  { id: 4, d: "2105-12-31", t: "2105-12-31T23:59:59Z" },
  { id: 5, d: "2106-01-01", t: "2106-01-01T00:00:00Z" },
  { id: 6, d: "2299-12-31", t: "2299-12-31T23:59:59Z" },
  { id: 7, d: "1969-03-01", t: null },
];
const OUT_OF_RANGE = [
  { id: 8, d: "1899-12-31", t: "1950-06-01T12:00:00Z" },
  { id: 9, d: "2300-01-01", t: "1950-06-01T12:00:00Z" },
  { id: 10, d: "1950-06-01", t: "1899-12-31T23:59:59Z" },
  { id: 11, d: "1950-06-01", t: "2300-01-01T00:00:00Z" },
];

function csv(rows: { id: number; d: string; t: string | null }[]): string {
  return `id,d,t\n${rows.map((r) => `${r.id},${r.d},${r.t ?? ""}`).join("\n")}\n`;
}

async function load(dataset: { id: string }, rows: typeof ROWS) {
  const file = `${uniqueName("f")}.csv`;
  await writeFile(join(f.root, file), csv(rows));
  const source = await f.pub.source("FILE", { path: file });
  const res = await f.stack.graphql(
    CreatePipelineDocument,
    { input: { sourceId: source, datasetId: dataset.id, name: "dates", steps: [] } },
    f.publisher.headers,
  );
  return f.pub.finished(await f.pub.run(ok(res).createPipeline.id));
}

async function records(slug: string, filter?: RecordFilterInput, pageSize = 100, column = "id") {
  const out: Record<string, unknown>[] = [];
  let after: string | null | undefined;
  for (;;) {
    const res = ok(
      await f.stack.graphql(
        RecordsDocument,
        { slug, first: pageSize, after, filter, orderBy: [{ column, direction: "ASC" }] },
        f.publisher.headers,
      ),
    );
    out.push(...res.dataset!.records.edges.map((e) => e.node.values as Record<string, unknown>));
    if (!res.dataset!.records.pageInfo.hasNextPage) return out;
    after = res.dataset!.records.pageInfo.endCursor;
  }
}

async function tableTypes(datasetId: string): Promise<Record<string, string>> {
  const row = await f.stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { id: datasetId } });
  const rows = await f.stack.app.stores.clickhouse.query<{ name: string; type: string }>(
    sql`SELECT name, type FROM system.columns WHERE database = ${f.stack.app.config.CLICKHOUSE_DATABASE} AND table = ${row.tableName}`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.type]));
}

// Independent of the code under test: the calendar as JavaScript's Date keeps it.
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const monday = (d: string) => {
  const ms = Date.parse(`${d}T00:00:00Z`);
  return day(ms - ((new Date(ms).getUTCDay() + 6) % 7) * 86_400_000);
};
const hour = (t: string) => `${t.slice(0, 13)}:00:00Z`;

function counts(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

describe("DATE and DATETIME from 1900 to 2299", () => {
  let dataset: { id: string; rawId: string; slug: string };

  beforeAll(async () => {
    dataset = await f.pub.dataset(COLUMNS);
    const run = await load(dataset, [...ROWS, ...OUT_OF_RANGE]);
    expect(run.status).toBe("SUCCEEDED");
    expect(run.rowsWritten).toBe(ROWS.length);
    expect(run.rowsRejected).toBe(OUT_OF_RANGE.length);
    const reasons = run.rejectedRows.edges.map((e) => e.node.reasons.join("; "));
    expect(reasons).toHaveLength(OUT_OF_RANGE.length);
    for (const reason of reasons) expect(reason).toMatch(/from 1900-01-01 to 2299-12-31/);
  }, 60_000);

  it("stores them in a type that holds the range on this engine", async () => {
    const types = await tableTypes(dataset.rawId);
    const embedded = f.stack.app.stores.clickhouse.engine === "embedded";
    expect(types.d).toBe(embedded ? "Date32" : "Int32");
    expect(types.t).toBe(embedded ? "Nullable(DateTime64(3, 'UTC'))" : "Nullable(Int64)");
  });

  it("reads every value back exactly, and pages in date order across 1970", async () => {
    expect(await records(dataset.slug)).toEqual(ROWS);
    const byDay = [...ROWS].sort((a, b) => a.d.localeCompare(b.d));
    expect(await records(dataset.slug, undefined, 2, "d")).toEqual(byDay);
    // NULL sorts last.
    const byTime = [...ROWS].sort((a, b) => (a.t === null ? 1 : b.t === null ? -1 : a.t < b.t ? -1 : 1));
    expect((await records(dataset.slug, undefined, 2, "t")).map((r) => r.id)).toEqual(
      byTime.map((r) => r.id),
    );
  });

  it("filters across 1970 and beyond 2105", async () => {
    const ids = async (filter: RecordFilterInput) => (await records(dataset.slug, filter)).map((r) => r.id);
    expect(await ids({ column: "d", lt: "1970-01-01" })).toEqual([1, 2, 7]);
    expect(await ids({ column: "d", gt: "1969-12-31" })).toEqual([3, 4, 5, 6]);
    expect(await ids({ column: "d", gte: "2106-01-01" })).toEqual([5, 6]);
    expect(await ids({ column: "d", eq: "1900-01-01" })).toEqual([1]);
    expect(await ids({ column: "t", lt: "1970-01-01T00:00:00Z" })).toEqual([1, 2]);
    const span = [
      { column: "t", gte: "1969-12-31T23:59:59Z" },
      { column: "t", lte: "2106-01-01T00:00:00Z" },
    ];
    expect(await ids({ and: span })).toEqual([2, 3, 4, 5]);
    expect(await ids({ column: "t", gt: "2105-12-31T23:59:59Z" })).toEqual([5, 6]);
    const refused = await f.stack.graphql(
      RecordsDocument,
      { slug: dataset.slug, first: 1, filter: { column: "d", lt: "1899-12-31" } },
      f.publisher.headers,
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(refused.errors?.[0]?.message).toMatch(/from 1900-01-01 to 2299-12-31/);
  });

  it("groups into DAY, WEEK, MONTH and HOUR buckets on both sides of 1970; MIN and MAX span the range", async () => {
    const grouped = async (column: string, bucket: TimeBucket) => {
      const res = ok(
        await f.stack.graphql(
          AggregateDocument,
          { slug: dataset.slug, groupBy: [{ column, bucket }], metrics: [{ fn: "COUNT" }], first: 100 },
          f.publisher.headers,
        ),
      );
      return Object.fromEntries(
        res.dataset!.aggregate.edges.map((e) => {
          const group = e.node.group as Record<string, unknown>;
          const metrics = e.node.metrics as Record<string, unknown>;
          return [String(group[column]), Number(Object.values(metrics)[0])];
        }),
      );
    };
    const days = ROWS.map((r) => r.d);
    const times = ROWS.flatMap((r) => (r.t === null ? [] : [r.t]));
    expect(await grouped("d", "DAY")).toEqual(counts(days));
    expect(await grouped("d", "WEEK")).toEqual(counts(days.map(monday)));
    expect(await grouped("d", "MONTH")).toEqual(counts(days.map((d) => `${d.slice(0, 7)}-01`)));
    expect(await grouped("t", "MONTH")).toEqual({
      ...counts(times.map((t) => `${t.slice(0, 7)}-01`)),
      null: 1,
    });
    expect(await grouped("t", "WEEK")).toEqual({
      ...counts(times.map((t) => monday(t.slice(0, 10)))),
      null: 1,
    });
    expect(await grouped("t", "HOUR")).toEqual({ ...counts(times.map(hour)), null: 1 });

    const extremes = ok(
      await f.stack.graphql(
        AggregateDocument,
        {
          slug: dataset.slug,
          metrics: [
            { fn: "MIN", column: "d" },
            { fn: "MAX", column: "d" },
            { fn: "MIN", column: "t" },
            { fn: "MAX", column: "t" },
          ],
          first: 1,
        },
        f.publisher.headers,
      ),
    );
    expect(extremes.dataset!.aggregate.edges[0]!.node.metrics).toEqual({
      min_d: "1900-01-01",
      max_d: "2299-12-31",
      min_t: "1900-01-01T00:00:01Z",
      max_t: "2299-12-31T23:59:59Z",
    });
  });

  it("exports every value exactly as NDJSON, CSV and TSV", async () => {
    ok(await f.stack.graphql(PublishDatasetDocument, { id: dataset.id }, f.publisher.headers));
    const body = async (format: string) => {
      const res = await fetch(`${f.stack.url}/api/v1/data/export?dataset=${dataset.slug}&format=${format}`, {
        headers: f.publisher.headers,
      });
      expect(res.status).toBe(200);
      return res.text();
    };
    const ndjson = (await body("ndjson"))
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .map(({ _key, ...values }) => values)
      .sort((a, b) => Number(a.id) - Number(b.id));
    expect(ndjson).toEqual(ROWS);
    // No value here needs quoting or escaping: a line splits on its separator.
    const table = (text: string, end: string, separator: string, nullText: string) => {
      const [header, ...lines] = text.trim().split(end);
      expect(header).toBe(["_key", "id", "d", "t"].join(separator));
      return lines
        .map((line) => line.split(separator))
        .map(([, id, d, t]) => ({ id: Number(id), d, t: t === nullText ? null : t }))
        .sort((a, b) => a.id - b.id);
    };
    expect(table(await body("csv"), "\r\n", ",", "")).toEqual(ROWS);
    expect(table(await body("tsv"), "\n", "\t", "\\N")).toEqual(ROWS);
  });
});

describe("datasets made before the wide range", () => {
  it("keep Date and DateTime, their range (1970-01-01 to 2105-12-31) and their values", async () => {
    const dataset = await f.pub.dataset(COLUMNS);
    // As such a dataset was stored: columns without `storage`, a table of Date and DateTime.
    const { prisma, clickhouse } = f.stack.app.stores;
    const database = f.stack.app.config.CLICKHOUSE_DATABASE;
    const row = await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.rawId } });
    const legacy = (row.columns as unknown as Column[]).map(({ storage: _, ...c }) => c);
    await dropDatasetTable(clickhouse, database, row.tableName);
    await createDatasetTable(clickhouse, database, row.tableName, legacy);
    await prisma.dataset.update({ where: { id: row.id }, data: { columns: legacy } });
    expect(await tableTypes(dataset.rawId)).toMatchObject({ d: "Date", t: "Nullable(DateTime)" });

    const run = await load(dataset, ROWS);
    expect(run.status).toBe("SUCCEEDED");
    const kept = ROWS.filter((r) => r.d >= "1970-01-01" && r.d <= "2105-12-31");
    expect(run.rowsWritten).toBe(kept.length);
    for (const e of run.rejectedRows.edges)
      expect(e.node.reasons.join("; ")).toMatch(/from 1970-01-01 to 2105-12-31/);
    expect(await records(dataset.slug)).toEqual(kept);
    const ids = async (filter: RecordFilterInput) => (await records(dataset.slug, filter)).map((r) => r.id);
    expect(
      await ids({
        and: [
          { column: "d", gte: "1970-01-01" },
          { column: "d", lt: "2105-12-31" },
        ],
      }),
    ).toEqual([3]);
  });
});
