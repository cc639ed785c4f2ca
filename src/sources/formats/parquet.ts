import { createWriteStream } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, type FileMetaData } from "hyparquet";
import { AppError, ErrorCode } from "../../errors.js";
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
    let rowStart = 0;
    let rowNumber = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file, metadata, rowStart, rowEnd });
      } catch (err) {
        throw notParquet(`rows ${rowStart + 1}-${rowEnd} cannot be decoded (${(err as Error).message})`, err);
      }
      for (const row of rows) {
        const record = plainValue(row) as Record<string, unknown>;
        yield { rowNumber: ++rowNumber, ok: true, record, bytes: Buffer.byteLength(JSON.stringify(record)) };
      }
      rowStart = rowEnd;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
