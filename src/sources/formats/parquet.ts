import { createWriteStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  asyncBufferFromFile,
  parquetMetadataAsync,
  parquetReadObjects,
  type FileMetaData,
  type ParquetParsers,
  type SchemaElement,
} from "hyparquet";
// hyparquet decodes SNAPPY itself; its companion package adds GZIP, ZSTD, LZ4 (raw and Hadoop
// framing) and BROTLI, so Parquet from any writer loads whatever codec it chose.
import { compressors } from "hyparquet-compressors";
import { AppError, ErrorCode } from "../../errors.js";
import { formatUnscaled } from "../../records/values.js";
import { toBuffer, type ByteSource, type ParsedRow } from "./types.js";

const notParquet = (detail: string, cause?: unknown) =>
  new AppError(ErrorCode.BAD_USER_INPUT, `The file is not a readable Parquet file: ${detail}`, {}, { cause });

/** Values as JSON-safe scalars: INT64 as decimal strings, timestamps and dates as ISO strings. */
export function plainValue(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (Array.isArray(value)) return value.map(plainValue);
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainValue(v)]));
  }
  return value;
}

const DAY_MS = 86_400_000;

/** DATE values as the calendar day ('YYYY-MM-DD'), not a timestamp at midnight. */
const PARSERS: Partial<ParquetParsers> = {
  dateFromDays: (days: number) => new Date(days * DAY_MS).toISOString().slice(0, 10),
};

/**
 * hyparquet turns DECIMAL into a binary float, which loses digits (a DECIMAL(38,10) keeps about
 * 16). The top-level DECIMAL columns are read as their unscaled integers instead (the annotation
 * is taken off the schema before decoding) and formatted here as exact text; returns each such
 * column's scale by name.
 */
function takeDecimals(schema: SchemaElement[]): Map<string, number> {
  const scales = new Map<string, number>();
  const skip = (i: number): number => {
    const children = schema[i]?.num_children ?? 0;
    let next = i + 1;
    for (let c = 0; c < children; c++) next = skip(next);
    return next;
  };
  let i = 1;
  for (let c = 0; c < (schema[0]?.num_children ?? 0); c++) {
    const element = schema[i]!;
    const decimal = element.converted_type === "DECIMAL" || element.logical_type?.type === "DECIMAL";
    if (!element.num_children && decimal && element.type !== "BYTE_ARRAY") {
      scales.set(element.name, element.scale ?? 0);
      element.converted_type = undefined;
      element.logical_type = undefined;
    }
    i = skip(i);
  }
  return scales;
}

/** An unscaled decimal as hyparquet gives it raw: a number, a bigint, or big-endian bytes. */
function unscaledOf(value: unknown): bigint | null {
  if (typeof value === "bigint") return value;
  if (typeof value === "number") return BigInt(value);
  if (value instanceof Uint8Array) {
    if (value.length === 0) return 0n;
    const hex = Buffer.from(value).toString("hex");
    return BigInt.asIntN(value.length * 8, BigInt(`0x${hex}`));
  }
  return null;
}

async function hasParquetMagic(path: string, size: number): Promise<boolean> {
  if (size < 12) return false;
  const file = await open(path, "r");
  try {
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(4);
    await file.read(head, 0, 4, 0);
    await file.read(tail, 0, 4, size - 4);
    return head.toString("latin1") === "PAR1" && tail.toString("latin1") === "PAR1";
  } finally {
    await file.close();
  }
}

/**
 * Parquet keeps its schema in a footer, so the reader needs random access: the stream is spooled
 * to a temporary file (removed when reading ends or stops), never to memory. Rows are then decoded
 * one row group at a time, so memory is bounded by the file's largest row group, not its size.
 */
export async function* readParquet(input: ByteSource): AsyncGenerator<ParsedRow> {
  const dir = await mkdtemp(join(tmpdir(), "datahus-parquet-"));
  try {
    const path = join(dir, "input.parquet");
    await pipeline(
      Readable.from(
        (async function* () {
          for await (const chunk of input) yield toBuffer(chunk);
        })(),
      ),
      createWriteStream(path),
    );
    const file = await asyncBufferFromFile(path);
    if (file.byteLength === 0) return; // an empty upload holds no rows
    if (!(await hasParquetMagic(path, file.byteLength))) throw notParquet("the PAR1 markers are missing");

    let metadata: FileMetaData;
    try {
      metadata = await parquetMetadataAsync(file);
    } catch (err) {
      throw notParquet(`its footer cannot be decoded (${(err as Error).message})`, err);
    }
    const decimals = takeDecimals(metadata.schema);
    let rowStart = 0;
    let rowNumber = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd, compressors, parsers: PARSERS });
      } catch (err) {
        throw notParquet(`rows ${rowStart + 1}-${rowEnd} cannot be decoded (${(err as Error).message})`, err);
      }
      for (const row of rows) {
        for (const [name, scale] of decimals) {
          const unscaled = unscaledOf(row[name]);
          if (unscaled !== null) row[name] = formatUnscaled(unscaled, scale);
        }
        const record = plainValue(row) as Record<string, unknown>;
        yield { rowNumber: ++rowNumber, ok: true, record, bytes: Buffer.byteLength(JSON.stringify(record)) };
      }
      rowStart = rowEnd;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
