import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { DuckDBInstance } from "@duckdb/node-api";
import type { SchemaElement } from "hyparquet";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import {
  detectFormat,
  readRecords,
  type FileFormat,
  type ParsedRow,
} from "../../src/sources/formats/index.js";

type Options = Parameters<typeof readRecords>[1];

async function* chunks(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function collect(data: string | Buffer, options: Options, chunkSize = 64 * 1024): Promise<ParsedRow[]> {
  const rows: ParsedRow[] = [];
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  for await (const row of readRecords(chunks(bytes, chunkSize), options)) rows.push(row);
  return rows;
}

const records = (rows: ParsedRow[]) => rows.map((row) => (row.ok ? row.record : { failed: row.reasons }));

async function expectBadInput(promise: Promise<unknown>, message: RegExp) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AppError);
  expect((err as AppError).code).toBe("BAD_USER_INPUT");
  expect((err as AppError).message).toMatch(message);
}

describe("detectFormat", () => {
  it("reads the format from the extension and strips .gz", () => {
    expect(detectFormat("orders.csv")).toEqual({ format: "CSV", gzip: false });
    expect(detectFormat("dir/Orders.TSV.gz")).toEqual({ format: "TSV", gzip: true });
    expect(detectFormat("events.jsonl")).toEqual({ format: "NDJSON", gzip: false });
    expect(detectFormat("events.ndjson.gz")).toEqual({ format: "NDJSON", gzip: true });
    expect(detectFormat("a.json")).toEqual({ format: "JSON", gzip: false });
    expect(detectFormat("a.parquet")).toEqual({ format: "PARQUET", gzip: false });
  });

  it("prefers an explicit format but still notices gzip", () => {
    expect(detectFormat("export.txt.gz", "TSV")).toEqual({ format: "TSV", gzip: true });
  });

  it("refuses an unknown extension", () => {
    expect(() => detectFormat("notes.txt")).toThrow(AppError);
    expect(() => detectFormat("README")).toThrow(/Cannot tell the format/);
  });
});

describe("CSV", () => {
  const csv = { format: "CSV" } as const;

  it("maps the header to keys and numbers the rows", async () => {
    const rows = await collect("id,name\n1,Ada\n2,Grace\n", csv);
    expect(rows).toEqual([
      { rowNumber: 1, ok: true, record: { id: "1", name: "Ada" }, bytes: 5 },
      { rowNumber: 2, ok: true, record: { id: "2", name: "Grace" }, bytes: 7 },
    ]);
  });

  it("reads quoted commas, escaped quotes and embedded newlines", async () => {
    const text = 'id,text\n1,"a, b"\n2,"she said ""hi"""\n3,"line one\nline two"\n';
    expect(records(await collect(text, csv))).toEqual([
      { id: "1", text: "a, b" },
      { id: "2", text: 'she said "hi"' },
      { id: "3", text: "line one\nline two" },
    ]);
  });

  it("reads CRLF line endings, including inside quotes", async () => {
    const text = 'id,text\r\n1,x\r\n2,"a\r\nb"\r\n';
    expect(records(await collect(text, csv))).toEqual([
      { id: "1", text: "x" },
      { id: "2", text: "a\r\nb" },
    ]);
  });

  it("strips a UTF-8 BOM and keeps multi-byte text", async () => {
    const text = "\uFEFFcity,note\nKøbenhavn,🎉 fête\n東京,日本語テキスト\n";
    expect(records(await collect(text, csv))).toEqual([
      { city: "København", note: "🎉 fête" },
      { city: "東京", note: "日本語テキスト" },
    ]);
  });

  it("handles characters and quotes split across chunks: one byte at a time", async () => {
    const text = '\uFEFFid,text\r\n1,"🎉 a, ""b""\r\nc"\r\n2,東京\r\n';
    const whole = await collect(text, csv);
    expect(await collect(text, csv, 1)).toEqual(whole);
    expect(records(whole)).toEqual([
      { id: "1", text: '🎉 a, "b"\r\nc' },
      { id: "2", text: "東京" },
    ]);
  });

  it("yields nothing for an empty file or a header alone", async () => {
    expect(await collect("", csv)).toEqual([]);
    expect(await collect("a,b\n", csv)).toEqual([]);
  });

  it("ignores a trailing empty line and a missing final newline", async () => {
    expect(records(await collect("a\n1\n\n", csv))).toEqual([{ a: "1" }]);
    expect(records(await collect("a,b\n1,2", csv))).toEqual([{ a: "1", b: "2" }]);
  });

  it("quarantines ragged rows and goes on with the good ones", async () => {
    const rows = await collect("a,b,c\n1,2,3\n4,5\n6,7,8,9\n10,11,12\n", csv);
    expect(rows).toEqual([
      { rowNumber: 1, ok: true, record: { a: "1", b: "2", c: "3" }, bytes: 5 },
      { rowNumber: 2, ok: false, raw: "4,5", reasons: ["expected 3 fields, found 2: column 3 is missing"] },
      {
        rowNumber: 3,
        ok: false,
        raw: "6,7,8,9",
        reasons: ["expected 3 fields, found 4: column 4 is one too many"],
      },
      { rowNumber: 4, ok: true, record: { a: "10", b: "11", c: "12" }, bytes: 8 },
    ]);
  });

  it("quarantines a quote left open at the end while the rows before it load", async () => {
    const rows = await collect('a,b\n1,2\n3,"open\n', csv);
    expect(rows[0]).toEqual({ rowNumber: 1, ok: true, record: { a: "1", b: "2" }, bytes: 3 });
    expect(rows[1]).toMatchObject({
      rowNumber: 2,
      ok: false,
      reasons: [expect.stringMatching(/Quote Not Closed/)],
    });
    expect(rows).toHaveLength(2);
  });

  it("names columns column1… without a header, and honours a custom delimiter", async () => {
    expect(records(await collect("1;2\n3;4\n", { format: "CSV", header: false, delimiter: ";" }))).toEqual([
      { column1: "1", column2: "2" },
      { column1: "3", column2: "4" },
    ]);
  });

  it("refuses a header that names a column twice", async () => {
    await expectBadInput(collect("a,a\n1,2\n", csv), /names the column "a" twice/);
  });

  it("counts a 200,000-row generated stream without holding it", async () => {
    async function* generate(): AsyncGenerator<Buffer> {
      yield Buffer.from("id,name,amount\n");
      for (let i = 0; i < 200_000; i += 1000) {
        let block = "";
        for (let j = i; j < i + 1000; j++) block += `${j},"name ${j}, row",${j * 1.5}\n`;
        yield Buffer.from(block);
      }
    }
    let count = 0;
    let lastId = "";
    for await (const row of readRecords(Readable.from(generate()), { format: "CSV" })) {
      if (!row.ok) throw new Error(row.reasons.join());
      count++;
      lastId = row.record.id as string;
    }
    expect(count).toBe(200_000);
    expect(lastId).toBe("199999");
  });
});

describe("TSV", () => {
  it("splits on tabs and keeps commas in fields", async () => {
    const rows = await collect('id\tnote\n1\ta, b\n2\t"tab\there"\n', { format: "TSV" });
    expect(records(rows)).toEqual([
      { id: "1", note: "a, b" },
      { id: "2", note: "tab\there" },
    ]);
  });
});

describe("JSON array", () => {
  const json = { format: "JSON" } as const;
  const text =
    '\uFEFF[ {"id": 1, "name": "Ada, \\"the\\" first ]", "tags": ["x", {"y": [1]}]},\n {"id": 2, "city": "東京 🎉"} ]\n';

  it("streams the objects of a top-level array", async () => {
    const rows = await collect(text, json);
    expect(records(rows)).toEqual([
      { id: 1, name: 'Ada, "the" first ]', tags: ["x", { y: [1] }] },
      { id: 2, city: "東京 🎉" },
    ]);
    expect(rows.map((r) => r.rowNumber)).toEqual([1, 2]);
  });

  it("gives the same rows when fed one byte at a time", async () => {
    expect(await collect(text, json, 1)).toEqual(await collect(text, json));
  });

  it("quarantines non-object elements and malformed elements", async () => {
    const rows = await collect('[{"a":1}, 42, [1], {"a": nope}, {"a":2}]', json);
    expect(records(rows)).toEqual([
      { a: 1 },
      { failed: ["expected a JSON object, found number"] },
      { failed: ["expected a JSON object, found array"] },
      { failed: [expect.stringMatching(/^invalid JSON/)] },
      { a: 2 },
    ]);
    expect(rows[3]).toMatchObject({ ok: false, raw: '{"a": nope}' });
  });

  it("reads an empty array or empty file as no rows", async () => {
    expect(await collect("[]", json)).toEqual([]);
    expect(await collect("", json)).toEqual([]);
  });

  it("refuses a file that is not an array, or is truncated", async () => {
    await expectBadInput(collect('{"a":1}', json), /top-level array/);
    await expectBadInput(collect('[{"a":1}, {"a":', json), /not closed/);
  });
});

describe("NDJSON", () => {
  const ndjson = { format: "NDJSON" } as const;
  const text = '{"id":1,"t":"🎉"}\r\n\r\n{"id":2,"t":"東京"}\n{"id": 3,\n[1,2]\n   \n{"id":4}';

  it("reads one object per line, skips blank lines, quarantines bad lines", async () => {
    const rows = await collect(text, ndjson);
    expect(records(rows)).toEqual([
      { id: 1, t: "🎉" },
      { id: 2, t: "東京" },
      { failed: [expect.stringMatching(/^invalid JSON: /)] },
      { failed: ["expected a JSON object, found array"] },
      { id: 4 },
    ]);
    expect(rows[2]).toMatchObject({ rowNumber: 3, ok: false, raw: '{"id": 3,' });
    expect(rows[0]).toMatchObject({ bytes: Buffer.byteLength('{"id":1,"t":"🎉"}') });
  });

  it("gives the same rows when fed one byte at a time", async () => {
    expect(await collect(text, ndjson, 1)).toEqual(await collect(text, ndjson));
  });
});

describe("Parquet", () => {
  const parquet = Buffer.from(
    parquetWriteBuffer({
      columnData: [
        { name: "id", data: [1, 2, 3], type: "INT32" },
        { name: "big", data: [1n, 9007199254740993n, -5n], type: "INT64" },
        { name: "name", data: ["Ada", "東京 🎉", null], type: "STRING" },
        {
          name: "at",
          data: [new Date("2024-01-02T03:04:05.006Z"), new Date(0), new Date("2030-12-31T00:00:00Z")],
          type: "TIMESTAMP",
        },
      ],
      rowGroupSize: 2,
    }),
  );
  const expected = [
    { id: 1, big: "1", name: "Ada", at: "2024-01-02T03:04:05.006Z" },
    { id: 2, big: "9007199254740993", name: "東京 🎉", at: "1970-01-01T00:00:00.000Z" },
    { id: 3, big: "-5", name: null, at: "2030-12-31T00:00:00.000Z" },
  ];

  it("reads rows across row groups, INT64 as strings and timestamps as ISO strings", async () => {
    const rows = await collect(parquet, { format: "PARQUET" }, 7);
    expect(records(rows)).toEqual(expected);
    expect(rows.map((r) => r.rowNumber)).toEqual([1, 2, 3]);
    // Progress by the rows the footer counts, not by bytes.
    expect(rows.map((r) => (r.ok ? r.progress : undefined))).toEqual([1 / 3, 2 / 3, 1]);
  });

  it("refuses a file that is not Parquet", async () => {
    await expectBadInput(collect("id,name\n1,Ada\n", { format: "PARQUET" }), /not a readable Parquet file/);
  });

  it("reads gzip-compressed Parquet", async () => {
    expect(records(await collect(gzipSync(parquet), { format: "PARQUET", gzip: true }))).toEqual(expected);
  });

  it("reads decimals stored as BYTE_ARRAY exactly, and text without an annotation as text", async () => {
    const schema: SchemaElement[] = [
      { name: "root", num_children: 2 },
      {
        name: "d",
        type: "BYTE_ARRAY",
        converted_type: "DECIMAL",
        precision: 38,
        scale: 10,
        repetition_type: "OPTIONAL",
      },
      { name: "s", type: "BYTE_ARRAY", repetition_type: "OPTIONAL" },
    ];
    const file = parquetWriteBuffer({
      schema,
      columnData: [
        { name: "d", data: [10n ** 38n - 1n, -1n, 12345n, null] },
        { name: "s", data: ["plain", "東京", "", null] },
      ],
    });
    expect(records(await collect(Buffer.from(file), { format: "PARQUET" }))).toEqual([
      { d: "9999999999999999999999999999.9999999999", s: "plain" },
      { d: "-0.0000000001", s: "東京" },
      { d: "0.0000012345", s: "" },
      { d: null, s: null },
    ]);
  });

  it("reads decimals inside structs, lists and maps exactly (a file DuckDB wrote)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "datahus-nested-"));
    try {
      const path = join(dir, "nested.parquet");
      const duck = await (await DuckDBInstance.create(":memory:")).connect();
      await duck.run(`COPY (
        SELECT 1 AS id,
          {'price': CAST('12345678901234567890.1234567890' AS DECIMAL(38,10)), 'note': 'a'} AS item,
          [CAST('0.0001' AS DECIMAL(18,4)), CAST('-99999999999999.9999' AS DECIMAL(18,4)), NULL] AS prices,
          MAP {'eur': CAST('1.10' AS DECIMAL(9,2)), 'usd': CAST('-0.05' AS DECIMAL(9,2))} AS rates,
          [{'q': CAST('7.5' AS DECIMAL(20,1))}] AS lines
      ) TO '${path}' (FORMAT parquet)`);
      duck.closeSync();
      expect(records(await collect(await readFile(path), { format: "PARQUET" }))).toEqual([
        {
          id: 1,
          item: { price: "12345678901234567890.1234567890", note: "a" },
          prices: ["0.0001", "-99999999999999.9999", null],
          rates: { eur: "1.10", usd: "-0.05" },
          lines: [{ q: "7.5" }],
        },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe("gzip", () => {
  const cases: [FileFormat, string, Record<string, unknown>[]][] = [
    ["CSV", 'a,b\n1,"x,y"\n', [{ a: "1", b: "x,y" }]],
    ["TSV", "a\tb\n1\t2\n", [{ a: "1", b: "2" }]],
    ["JSON", '[{"a":1},{"a":2}]', [{ a: 1 }, { a: 2 }]],
    ["NDJSON", '{"a":1}\n{"a":2}\n', [{ a: 1 }, { a: 2 }]],
  ];

  it.each(cases)("decompresses %s", async (format, text, expected) => {
    const zipped = gzipSync(Buffer.from(text));
    expect(records(await collect(zipped, { format, gzip: true }, 3))).toEqual(expected);
  });

  it("refuses bytes that are not gzip when gzip is declared", async () => {
    await expectBadInput(collect("a,b\n1,2\n", { format: "CSV", gzip: true }), /not valid gzip/);
  });

  it("refuses a truncated gzip stream", async () => {
    const zipped = gzipSync(Buffer.from("a,b\n".repeat(1000)));
    await expectBadInput(
      collect(zipped.subarray(0, zipped.length - 20), { format: "CSV", gzip: true }),
      /not valid gzip/,
    );
  });
});
