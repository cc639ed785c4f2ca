// Data files for file drops: records (objects keyed by column name) written as CSV, NDJSON or
// Parquet, optionally gzipped, into a local file, counting rows and bytes and hashing the bytes
// as they are written. Memory holds one batch of text (CSV, NDJSON) or one Parquet row group.
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { PassThrough, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import type { SchemaElement } from "hyparquet";
import { ByteWriter, parquetWriteRows } from "hyparquet-writer";
import type { Column } from "../../catalog/columns.js";
import { csvField } from "../../records/export.js";
import { plainValue } from "../../sources/formats/parquet.js";

export const DROP_FORMATS = ["CSV", "NDJSON", "PARQUET"] as const;
export type DropFormat = (typeof DROP_FORMATS)[number];

export interface DataFileOptions {
  format: DropFormat;
  /** Gzip the whole file (`.gz`). Parquet is already compressed inside (Snappy). */
  gzip: boolean;
  /** The columns, in file order. Values missing from a record are written as null. */
  columns: readonly Pick<Column, "name" | "type" | "nullable">[];
  /** Rows per Parquet row group: what Parquet holds in memory at once. @default 50000 */
  rowGroupSize?: number;
}

export interface DataFileStats {
  rowCount: number;
  /** Size of the file as written (after gzip). */
  bytes: number;
  /** Hex SHA-256 of the file as written. */
  sha256: string;
}

/** `part-00000.csv.gz`: the extension says the format and the compression. */
export function dataFileName(index: number, format: DropFormat, gzip: boolean): string {
  const extension = { CSV: "csv", NDJSON: "ndjson", PARQUET: "parquet" }[format];
  return `part-${String(index).padStart(5, "0")}.${extension}${gzip ? ".gz" : ""}`;
}

export const CONTENT_TYPES: Record<DropFormat, string> = {
  CSV: "text/csv; charset=utf-8; header=present",
  NDJSON: "application/x-ndjson; charset=utf-8",
  PARQUET: "application/vnd.apache.parquet",
};

/** Writes the records to `path` and returns what the manifest states about the file. */
export async function writeDataFile(
  path: string,
  records: AsyncIterable<Record<string, unknown>>,
  options: DataFileOptions,
): Promise<DataFileStats> {
  const sink = openSink(path, options.gzip);
  let rowCount = 0;
  const counted = (async function* () {
    for await (const record of records) {
      rowCount++;
      yield record;
    }
  })();
  try {
    if (options.format === "PARQUET") await writeParquet(sink, counted, options);
    else await writeText(sink, counted, options);
    const { bytes, sha256 } = await sink.end();
    return { rowCount, bytes, sha256 };
  } catch (error) {
    sink.destroy(error as Error);
    throw error;
  }
}

interface Sink {
  write(chunk: Buffer | string): Promise<void>;
  end(): Promise<{ bytes: number; sha256: string }>;
  destroy(error: Error): void;
}

/** A file behind optional gzip and a meter that counts and hashes the bytes that reach disk. */
function openSink(path: string, gzip: boolean): Sink {
  const head = new PassThrough();
  const hash = createHash("sha256");
  let bytes = 0;
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
  });
  const stages = gzip ? [head, createGzip(), meter] : [head, meter];
  const done = pipeline([...stages, createWriteStream(path)]);
  done.catch(() => undefined); // surfaced by write() and end()
  return {
    async write(chunk) {
      if (!head.write(chunk)) await Promise.race([once(head, "drain"), done]);
    },
    async end() {
      head.end();
      await done;
      return { bytes, sha256: hash.digest("hex") };
    },
    destroy(error) {
      head.destroy(error);
    },
  };
}

/** Text is handed to the sink in batches of about this many characters. */
const TEXT_BATCH = 64 * 1024;

async function writeText(
  sink: Sink,
  records: AsyncIterable<Record<string, unknown>>,
  options: DataFileOptions,
): Promise<void> {
  const names = options.columns.map((c) => c.name);
  let text = options.format === "CSV" ? `${names.map(csvField).join(",")}\r\n` : "";
  for await (const record of records) {
    text += options.format === "CSV" ? csvLine(names, record) : ndjsonLine(names, record);
    if (text.length >= TEXT_BATCH) {
      await sink.write(text);
      text = "";
    }
  }
  if (text) await sink.write(text);
}

/** RFC 4180 with CRLF line ends; NULL is the empty field, the empty string `""` (export.ts). */
function csvLine(names: readonly string[], record: Record<string, unknown>): string {
  return `${names.map((name) => csvField(plainValue(record[name]))).join(",")}\r\n`;
}

/** Keys in column order; missing values are null, so every line has every column. */
function ndjsonLine(names: readonly string[], record: Record<string, unknown>): string {
  const ordered: Record<string, unknown> = {};
  for (const name of names) ordered[name] = plainValue(record[name] ?? null);
  return `${JSON.stringify(ordered)}\n`;
}

type ParquetColumn = DataFileOptions["columns"][number];

/**
 * The Parquet type of each column. DECIMAL is written as its exact decimal text (UTF8), the same
 * string the API returns, rather than risk a lossy conversion; DATETIME is TIMESTAMP_MILLIS (UTC).
 */
function parquetElement(column: ParquetColumn): SchemaElement {
  const repetition_type = column.nullable ? "OPTIONAL" : "REQUIRED";
  const base = { name: column.name, repetition_type } as const;
  switch (column.type) {
    case "STRING":
    case "DECIMAL":
      return { ...base, type: "BYTE_ARRAY", converted_type: "UTF8" };
    case "INT32":
      return { ...base, type: "INT32" };
    case "INT64":
      return { ...base, type: "INT64" };
    case "FLOAT64":
      return { ...base, type: "DOUBLE" };
    case "BOOLEAN":
      return { ...base, type: "BOOLEAN" };
    case "DATE":
      return { ...base, type: "INT32", converted_type: "DATE" };
    case "DATETIME":
      return { ...base, type: "INT64", converted_type: "TIMESTAMP_MILLIS" };
  }
}

/** A value in the JSON representation (columns.ts) as the Parquet writer wants it. */
function parquetValue(column: ParquetColumn, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (column.type) {
    case "STRING":
    case "DECIMAL":
      return String(plainValue(value));
    case "INT32":
    case "FLOAT64":
      return Number(value);
    case "INT64":
      return typeof value === "bigint" ? value : BigInt(String(value));
    case "BOOLEAN":
      return value === true || value === 1 || value === "true" || value === "1";
    case "DATE":
      return value instanceof Date ? value : new Date(`${String(value).slice(0, 10)}T00:00:00Z`);
    case "DATETIME":
      return value instanceof Date ? value : new Date(String(value));
  }
}

/** hyparquet-writer's buffer, emptied into the sink after each row group and at the end. */
class SinkWriter extends ByteWriter {
  constructor(private readonly sink: Sink) {
    super(1024 * 1024);
  }

  flush(): Promise<void> {
    const chunk = Buffer.from(new Uint8Array(this.buffer, 0, this.index));
    this.index = 0;
    return this.sink.write(chunk);
  }

  override finish(): Promise<void> {
    return this.flush();
  }
}

async function writeParquet(
  sink: Sink,
  records: AsyncIterable<Record<string, unknown>>,
  options: DataFileOptions,
): Promise<void> {
  const columns = options.columns;
  const rows = (async function* () {
    for await (const record of records) {
      const row: Record<string, unknown> = {};
      for (const column of columns) row[column.name] = parquetValue(column, record[column.name]);
      yield row;
    }
  })();
  await parquetWriteRows({
    writer: new SinkWriter(sink),
    rows,
    columns: columns.map((c) => ({ name: c.name, nullable: c.nullable })),
    schema: [{ name: "root", num_children: columns.length }, ...columns.map(parquetElement)],
    rowGroupSize: options.rowGroupSize ?? 50_000,
    createdBy: "datahus",
  });
}
