export type FileFormat = "CSV" | "TSV" | "JSON" | "NDJSON" | "PARQUET";

/**
 * One record read from a file. `rowNumber` counts the file's records from 1 (a CSV header row,
 * blank lines and NDJSON blank lines are not records). A row that cannot be read is a failure
 * carrying its raw text and reasons, so the pipeline quarantines it and goes on.
 */
export type ParsedRow =
  | {
      rowNumber: number;
      ok: true;
      record: Record<string, unknown>;
      bytes: number;
      /** The share of the file's rows read so far, where the format says how many it holds (Parquet). */
      progress?: number;
    }
  | { rowNumber: number; ok: false; raw: string; reasons: string[] };

export type ByteSource = AsyncIterable<Buffer | Uint8Array | string>;

/** Longest single JSON element or NDJSON line we hold; beyond it the file is refused. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

export const jsonKind = (value: unknown): string =>
  value === null ? "null" : Array.isArray(value) ? "array" : typeof value;

export const toBuffer = (chunk: Buffer | Uint8Array | string): Buffer =>
  typeof chunk === "string"
    ? Buffer.from(chunk, "utf8")
    : Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk);
