// What a publisher loads is what a buyer reads (issue 11), on the real stack: FILE sources from
// FILE_SOURCE_ROOT, runs worked by the in-process worker, values read back through GraphQL and the
// export. One test per defect the issue lists; each fails on the code before it.
import { DuckDBInstance } from "@duckdb/node-api";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreatePipelineDocument,
  PublishDatasetDocument,
  RecordsDocument,
  TestSourceConnectionDocument,
  UpdatePipelineDocument,
  type CreatePipelineInput,
} from "../generated/graphql.js";
import { uniqueName } from "../support/databases.js";
import { ok } from "../support/publishing.js";
import type { TestAccount, TestStack } from "../support/stack.js";
import { startFileStack, type FileStack } from "../support/file-stack.js";

let files: FileStack;
let stack: TestStack;
let root: string;
let publisher: TestAccount;
let pub: FileStack["pub"];

beforeAll(async () => {
  files = await startFileStack("exact", { PIPELINE_BATCH_ROWS: "500" });
  ({ stack, root, publisher, pub } = files);
}, 60_000);

afterAll(() => files?.close());

type Columns = Parameters<FileStack["pub"]["dataset"]>[0];

/** A file in FILE_SOURCE_ROOT and a FILE source reading it. */
async function fileSource(content: string | Buffer, name: string, config: Record<string, unknown> = {}) {
  const file = `${uniqueName("f")}-${name}`;
  await writeFile(join(root, file), content);
  return pub.source("FILE", { path: file, ...config });
}

async function pipeline(sourceId: string, datasetId: string, extra: Partial<CreatePipelineInput> = {}) {
  const res = await stack.graphql(
    CreatePipelineDocument,
    { input: { sourceId, datasetId, name: "exact", steps: [], ...extra } },
    publisher.headers,
  );
  return ok(res).createPipeline.id;
}

/** Loads `content` into a new dataset; the finished run's detail and the dataset. */
async function load(
  columns: Columns,
  content: string | Buffer,
  name: string,
  options: {
    config?: Record<string, unknown>;
    pipeline?: Partial<CreatePipelineInput>;
    keyColumns?: string[];
  } = {},
) {
  const dataset = await pub.dataset(columns, { keyColumns: options.keyColumns ?? ["id"] });
  const source = await fileSource(content, name, options.config);
  const pipelineId = await pipeline(source, dataset.id, options.pipeline);
  const run = await pub.finished(await pub.run(pipelineId));
  return { run, dataset, pipelineId, source };
}

async function allRecords(slug: string) {
  const out: Record<string, unknown>[] = [];
  let after: string | null | undefined;
  for (;;) {
    const res = ok(await stack.graphql(RecordsDocument, { slug, first: 100, after }, publisher.headers));
    out.push(...res.dataset!.records.edges.map((e) => e.node.values as Record<string, unknown>));
    if (!res.dataset!.records.pageInfo.hasNextPage) return out;
    after = res.dataset!.records.pageInfo.endCursor;
  }
}

async function exported(dataset: { id: string; slug: string }): Promise<Record<string, unknown>[]> {
  ok(await stack.graphql(PublishDatasetDocument, { id: dataset.id }, publisher.headers));
  const res = await fetch(`${stack.url}/api/v1/data/export?dataset=${dataset.slug}&format=ndjson`, {
    headers: publisher.headers,
  });
  expect(res.status).toBe(200);
  return (await res.text())
    .split("\n")
    .filter(Boolean)
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

function addsUp(run: {
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  rowsFiltered: number;
  rowsDuplicate: number;
}) {
  expect(run.rowsRead).toBe(run.rowsWritten + run.rowsRejected + run.rowsFiltered + run.rowsDuplicate);
}

const byId = (rows: Record<string, unknown>[]) =>
  [...rows].sort((a, b) => Number(a.id) - Number(b.id)).map(({ _key, ...values }) => values);

describe("floats", () => {
  it("come back bit-exact through GraphQL and the export, in their shortest form", async () => {
    const floats = [
      "-114.6580911",
      "4.983333333333333",
      "2.857142857142857",
      "5e-324",
      "1.7976931348623157e308",
      "-1.7976931348623157e308",
      "2.2250738585072014e-308",
      "0.30000000000000004",
      "-0.1",
      "123456789.12345679",
    ];
    const csv = `id,x\n${floats.map((f, i) => `${i},${f}`).join("\n")}\n`;
    const { run, dataset } = await load(
      [
        { name: "id", type: "INT32", nullable: false },
        { name: "x", type: "FLOAT64", nullable: false },
      ],
      csv,
      "floats.csv",
      { pipeline: { steps: [{ op: "cast", field: "x", to: "FLOAT64" }] } },
    );
    expect(run.status).toBe("SUCCEEDED");
    const expected = floats.map((f, id) => ({ id, x: Number(f) }));
    expect(byId(await allRecords(dataset.slug))).toEqual(expected);
    expect(byId(await exported(dataset))).toEqual(expected);
    // The JSON text itself is the shortest round-trip form.
    const res = await fetch(`${stack.url}/api/v1/data/export?dataset=${dataset.slug}&format=csv`, {
      headers: publisher.headers,
    });
    const text = await res.text();
    // ClickHouse writes the export: the same shortest digits as JavaScript's, its exponent
    // without "+" (1.7976931348623157e308).
    const shortest = (f: string) => String(Number(f)).replace("e+", "e");
    for (const f of floats) expect(text.replaceAll("e+", "e")).toContain(`,${shortest(f)}\r\n`);
  });
});

describe("duplicate and empty keys", () => {
  const columns: Columns = [
    { name: "id", type: "STRING", nullable: false },
    { name: "v", type: "INT32", nullable: false },
  ];
  const csv = "id,v\na,1\nb,2\na,3\nc,4\na,5\nb,6\n";

  it("LAST_WINS (the default) loads the last row of each key and counts the others", async () => {
    const { run, dataset } = await load(columns, csv, "dups.csv");
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 6, rowsWritten: 3, rowsDuplicate: 3 });
    addsUp(run);
    const rows = await allRecords(dataset.slug);
    expect(rows.sort((x, y) => String(x.id).localeCompare(String(y.id)))).toEqual([
      { id: "a", v: 5 },
      { id: "b", v: 6 },
      { id: "c", v: 4 },
    ]);
    expect(run.logs.edges.map((e) => e.node.message)).toContain(
      "3 rows had a key another row of this load had",
    );
  });

  it("FIRST_WINS keeps the first row of each key", async () => {
    const { run, dataset } = await load(columns, csv, "dups.csv", {
      pipeline: { duplicateKeys: "FIRST_WINS" },
    });
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 6, rowsWritten: 3, rowsDuplicate: 3 });
    addsUp(run);
    const rows = await allRecords(dataset.slug);
    expect(rows.sort((x, y) => String(x.id).localeCompare(String(y.id)))).toEqual([
      { id: "a", v: 1 },
      { id: "b", v: 2 },
      { id: "c", v: 4 },
    ]);
  });

  it("QUARANTINE loads the first and quarantines the later ones with the first row's number", async () => {
    const { run } = await load(columns, csv, "dups.csv", { pipeline: { duplicateKeys: "QUARANTINE" } });
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 6, rowsWritten: 3, rowsRejected: 3 });
    addsUp(run);
    const rejected = run.rejectedRows.edges.map((e) => e.node);
    expect(rejected.map((r) => r.rowNumber)).toEqual([3, 5, 6]);
    expect(rejected[0]!.reasons[0]).toMatch(/duplicate key "a": row 1 of this load/);
  });

  it("refuses empty keys with a reason unless the pipeline allows them", async () => {
    const text = 'id,v\n,1\n"",2\nx,3\n';
    const refused = await load(columns, text, "empty.csv");
    expect(refused.run).toMatchObject({ status: "SUCCEEDED", rowsRead: 3, rowsWritten: 1, rowsRejected: 2 });
    addsUp(refused.run);
    expect(refused.run.rejectedRows.edges[0]!.node.reasons[0]).toMatch(/key column "id" empty/);
    const allowed = await load(columns, text, "empty.csv", { pipeline: { allowEmptyKeys: true } });
    expect(allowed.run).toMatchObject({ rowsWritten: 2, rowsDuplicate: 1 });
  });

  it("gives data without a key column a generated row key, keeping exact duplicate rows", async () => {
    const { run, dataset } = await load(
      [
        { name: "row_id", type: "STRING", nullable: false },
        { name: "city", type: "STRING", nullable: false },
      ],
      "city\nOslo\nOslo\nBergen\n",
      "nokey.csv",
      {
        keyColumns: ["row_id"],
        pipeline: { rowKeyColumn: "row_id", steps: [{ op: "select", fields: ["city"] }] },
      },
    );
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 3, rowsWritten: 3, rowsDuplicate: 0 });
    const rows = await allRecords(dataset.slug);
    expect(rows.map((r) => r.city).sort()).toEqual(["Bergen", "Oslo", "Oslo"]);
    expect(rows.map((r) => r.row_id).sort()).toEqual(expect.arrayContaining([expect.stringMatching(/:1$/)]));
  });
});

describe("full refresh safety", () => {
  const columns: Columns = [
    { name: "id", type: "INT32", nullable: false },
    { name: "v", type: "INT32", nullable: false },
  ];

  it("fails a run that rejects every row or loses more than half the rows, leaving the dataset", async () => {
    const good = `id,v\n${Array.from({ length: 10 }, (_, i) => `${i},${i}`).join("\n")}\n`;
    const { dataset, pipelineId, run } = await load(columns, good, "refresh.csv");
    expect(run.status).toBe("SUCCEEDED");
    const before = await pub.state(dataset);

    // Every row rejected: the file's v column is not a number any more.
    const source = await fileSource(
      `id,v\n${Array.from({ length: 10 }, (_, i) => `${i},x`).join("\n")}\n`,
      "bad.csv",
    );
    const bad = await pipeline(source, dataset.id);
    const rejected = await pub.finished(await pub.run(bad));
    expect(rejected.status).toBe("FAILED");
    expect(rejected.error).toMatch(/left no row to publish: all 10 rows read were rejected/);
    expect(await allRecords(dataset.slug)).toHaveLength(10);
    expect(await pub.state(dataset)).toEqual(before);

    // Four rows of ten: below the default half.
    const shrunk = await fileSource("id,v\n1,1\n2,2\n3,3\n4,4\n", "few.csv");
    const few = await pipeline(shrunk, dataset.id);
    const small = await pub.finished(await pub.run(few));
    expect(small.status).toBe("FAILED");
    expect(small.error).toMatch(/replace 10 live rows with 4/);
    expect(await allRecords(dataset.slug)).toHaveLength(10);

    // The publisher lowers the threshold: the same run goes through.
    ok(
      await stack.graphql(
        UpdatePipelineDocument,
        { id: few, input: { minLiveRowRatio: 0.2 } },
        publisher.headers,
      ),
    );
    const allowed = await pub.finished(await pub.run(few));
    expect(allowed.status).toBe("SUCCEEDED");
    expect(await allRecords(dataset.slug)).toHaveLength(4);
    expect(pipelineId).toBeTruthy();
  });
});

describe("CSV", () => {
  it("reads quotes inside unquoted fields as text; a bad row is one entry with its column and whole line", async () => {
    const csv = 'id,height,note\n1,5\'10",say "hi" there\n2,6\'1",x,extra field\n3,"5\'2""",plain\n';
    const { run, dataset } = await load(
      [
        { name: "id", type: "INT32", nullable: false },
        { name: "height", type: "STRING", nullable: false },
        { name: "note", type: "STRING", nullable: false },
      ],
      csv,
      "quotes.csv",
    );
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 3, rowsWritten: 2, rowsRejected: 1 });
    addsUp(run);
    expect(run.rejectedRows.edges.map((e) => e.node)).toEqual([
      {
        origin: expect.any(String),
        rowNumber: 2,
        raw: "2,6'1\",x,extra field",
        reasons: ["expected 3 fields, found 4: column 4 is one too many"],
      },
    ]);
    expect(byId(await allRecords(dataset.slug))).toEqual([
      { id: 1, height: "5'10\"", note: 'say "hi" there' },
      { id: 3, height: "5'2\"", note: "plain" },
    ]);
  });
});

describe("Parquet", () => {
  it("loads files another implementation (DuckDB) wrote with every common codec, values exact", async () => {
    const duck = await (await DuckDBInstance.create(":memory:")).connect();
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "big", type: "INT64", nullable: false },
      { name: "x", type: "FLOAT64", nullable: false },
      { name: "d38", type: "DECIMAL", precision: 38, scale: 10, nullable: false },
      { name: "d18", type: "DECIMAL", precision: 18, scale: 3, nullable: true },
      { name: "day", type: "DATE", nullable: false },
      { name: "at", type: "DATETIME", nullable: false },
      { name: "ok", type: "BOOLEAN", nullable: false },
      { name: "s", type: "STRING", nullable: false },
    ];
    const expected = [
      {
        id: 1,
        big: "9223372036854775807",
        x: -114.6580911,
        d38: "-9999999999999999999999999999.9999999999",
        d18: "-123456789012345.678",
        day: "2105-12-31",
        at: "2024-02-29T23:59:59Z",
        ok: true,
        s: "ü 😀 東京",
      },
      {
        id: 2,
        big: "-9223372036854775808",
        x: 5e-324,
        d38: "0.0000000001",
        d18: null,
        day: "1970-01-01",
        at: "1970-01-01T00:00:00Z",
        ok: false,
        s: "",
      },
    ];
    for (const codec of ["SNAPPY", "GZIP", "ZSTD", "LZ4", "BROTLI", "UNCOMPRESSED"]) {
      const path = join(root, `${uniqueName("duck")}.parquet`);
      await duck.run(`COPY (
        SELECT 1::INTEGER AS id, 9223372036854775807::BIGINT AS big, -114.6580911::DOUBLE AS x,
          -9999999999999999999999999999.9999999999::DECIMAL(38,10) AS d38,
          -123456789012345.678::DECIMAL(18,3) AS d18, DATE '2105-12-31' AS day,
          TIMESTAMP '2024-02-29 23:59:59' AS at, true AS ok, 'ü 😀 東京' AS s
        UNION ALL
        SELECT 2, (-9223372036854775807 - 1)::BIGINT, 5e-324::DOUBLE, 0.0000000001::DECIMAL(38,10),
          NULL, DATE '1970-01-01', TIMESTAMP '1970-01-01 00:00:00', false, ''
      ) TO '${path}' (FORMAT parquet, COMPRESSION ${codec})`);
      const { run, dataset } = await load(columns, await readFile(path), `${codec}.parquet`);
      expect(run.error, codec).toBeNull();
      expect(run, codec).toMatchObject({ status: "SUCCEEDED", rowsRead: 2, rowsWritten: 2 });
      expect(byId(await allRecords(dataset.slug)), codec).toEqual(expected);
    }
    duck.closeSync();
  }, 180_000);
});

describe("text encodings", () => {
  const columns: Columns = [
    { name: "id", type: "INT32", nullable: false },
    { name: "name", type: "STRING", nullable: false },
  ];
  const names = ["Müller", "Ærø €5", "naïve"];
  const csv = `id,name\n${names.map((n, i) => `${i},${n}`).join("\n")}\n`;

  it("quarantines invalid UTF-8 instead of replacing it, and the connection test names the setting", async () => {
    const latin1 = Buffer.from(csv.replace("€", "E"), "latin1");
    // The guard against empty full refreshes is off: this load is meant to reject every row.
    const { run, source } = await load(columns, latin1, "latin1.csv", { pipeline: { minLiveRowRatio: 0 } });
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 3, rowsWritten: 0, rowsRejected: 3 });
    expect(run.rejectedRows.edges[0]!.node.reasons[0]).toMatch(
      /not valid UTF-8 \(check the source's encoding\)/,
    );
    const test = await stack.graphql(TestSourceConnectionDocument, { id: source }, publisher.headers);
    expect(JSON.stringify(test)).toMatch(/not valid UTF-8: set the source's encoding/);
  });

  it("reads LATIN_1, WINDOWS_1252 and UTF-16 (with its BOM) as declared", async () => {
    const utf16le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(csv, "utf16le")]);
    const utf16be = Buffer.from(
      Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(csv, "utf16le").swap16()]),
    );
    const cases: [string, Buffer, string[]][] = [
      ["LATIN_1", Buffer.from(csv.replace("€", "E"), "latin1"), names.map((n) => n.replace("€", "E"))],
      ["WINDOWS_1252", Buffer.from(csv.replace("€", "\x80"), "latin1"), names],
      ["UTF_16", utf16le, names],
      ["UTF_16", utf16be, names],
    ];
    for (const [encoding, bytes, expected] of cases) {
      const { run, dataset } = await load(columns, bytes, "text.csv", { config: { encoding } });
      expect(run, encoding).toMatchObject({ status: "SUCCEEDED", rowsWritten: 3 });
      expect(
        byId(await allRecords(dataset.slug)).map((r) => r.name),
        encoding,
      ).toEqual(expected);
    }
  }, 120_000);
});
