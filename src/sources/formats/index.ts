import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { badInput } from "../../errors.js";
import { readCsv } from "./csv.js";
import { readJsonArray, readNdjson } from "./json.js";
import { readParquet } from "./parquet.js";
import type { TextEncoding } from "./text.js";
import type { ByteSource, FileFormat, ParsedRow } from "./types.js";

export type { FileFormat, ParsedRow } from "./types.js";
export { MAX_RECORD_BYTES } from "./types.js";

export interface ReadOptions {
  format: FileFormat;
  /** The bytes are gzip-compressed. @default false */
  gzip?: boolean;
  /** CSV/TSV field delimiter. @default "," for CSV, "\t" for TSV */
  delimiter?: string;
  /** CSV/TSV: the first record names the columns. @default true */
  header?: boolean;
  /** Text formats: the bytes' encoding. @default "UTF_8" */
  encoding?: TextEncoding;
}

const EXTENSIONS: Record<string, FileFormat> = {
  csv: "CSV",
  tsv: "TSV",
  tab: "TSV",
  json: "JSON",
  ndjson: "NDJSON",
  jsonl: "NDJSON",
  parquet: "PARQUET",
  pq: "PARQUET",
};

/**
 * The format of a file from its name (`orders.csv.gz` → CSV, gzip), unless the source states it.
 * A stated format still lets the `.gz` suffix switch gzip on.
 */
export function detectFormat(fileName: string, explicit?: FileFormat): { format: FileFormat; gzip: boolean } {
  const lower = fileName.toLowerCase();
  const gzip = lower.endsWith(".gz") || lower.endsWith(".gzip");
  const base = lower.replace(/\.gz(ip)?$/, "");
  if (explicit) return { format: explicit, gzip };
  const ext = base.slice(base.lastIndexOf(".") + 1);
  const format = base.includes(".") ? EXTENSIONS[ext] : undefined;
  if (!format) {
    throw badInput(
      `Cannot tell the format of "${fileName}": name it .csv, .tsv, .json, .ndjson or .parquet`,
      {
        fileName,
      },
    );
  }
  return { format, gzip };
}

async function* gunzip(input: ByteSource): AsyncGenerator<Buffer> {
  const unzip = createGunzip();
  const done = pipeline(Readable.from(input), unzip).catch(() => undefined); // errors surface below
  try {
    for await (const chunk of unzip) yield chunk as Buffer;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "";
    if (code.startsWith("Z_")) {
      throw badInput(`The file is not valid gzip: ${(err as Error).message}`, { zlibCode: code });
    }
    throw err;
  } finally {
    unzip.destroy();
    await done;
  }
}

/**
 * Records from a file's bytes, row by row in bounded memory. Malformed rows are yielded as
 * failures with their reasons; only a file unreadable as a whole throws BAD_USER_INPUT.
 */
export function readRecords(
  input: Readable | AsyncIterable<Buffer>,
  options: ReadOptions,
): AsyncIterable<ParsedRow> {
  const bytes: ByteSource = options.gzip ? gunzip(input) : input;
  const header = options.header ?? true;
  const encoding = options.encoding;
  switch (options.format) {
    case "CSV":
      return readCsv(bytes, { delimiter: options.delimiter ?? ",", header, encoding });
    case "TSV":
      return readCsv(bytes, { delimiter: options.delimiter ?? "\t", header, encoding });
    case "JSON":
      return readJsonArray(bytes, encoding);
    case "NDJSON":
      return readNdjson(bytes, encoding);
    case "PARQUET":
      return readParquet(bytes);
  }
}
