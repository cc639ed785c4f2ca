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
  parquetSchema,
  type FileMetaData,
  type ParquetParsers,
  type SchemaElement,
  type SchemaTree,
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

/** Turns a raw value of one top-level column into its exact form. */
type Fix = (value: unknown) => unknown;

/**
 * hyparquet turns DECIMAL into a binary float, which loses digits (a DECIMAL(38,10) keeps about
 * 16). Every DECIMAL leaf, at the top level or inside structs, lists and maps, is read as its
 * unscaled integer instead (the annotation is taken off the schema before decoding) and formatted
 * as exact text; returns, per top-level column holding one, how to fix its values.
 *
 * Read with `utf8: false`, so that a BYTE_ARRAY decimal arrives as its bytes rather than as text;
 * the BYTE_ARRAY leaves `utf8: true` would read as text are marked UTF8 here, so they still are.
 */
function exactDecimals(metadata: FileMetaData): Map<string, Fix> {
  const fixes = new Map<string, Fix>();
  for (const column of parquetSchema(metadata).children) {
    const fix = fixOf(column, false);
    if (fix) fixes.set(column.element.name, fix);
  }
  return fixes;
}

const isDecimal = (e: SchemaElement) => e.converted_type === "DECIMAL" || e.logical_type?.type === "DECIMAL";

// The shapes hyparquet assembles (its assemble.js): a LIST group becomes an array of its
// elements, a MAP group an object of its values by key, any other group an object by child name,
// and a repeated field outside them an array.
function fixOf(node: SchemaTree, repeatedByParent: boolean): Fix | null {
  const { element, children } = node;
  const fix = children.length ? groupFix(node) : leafFix(element);
  if (!fix || repeatedByParent || element.repetition_type !== "REPEATED") return fix;
  return (v) => (Array.isArray(v) ? v.map(fix) : v);
}

function leafFix(element: SchemaElement): Fix | null {
  if (!isDecimal(element)) {
    if (readAsText(element)) element.converted_type = "UTF8";
    return null;
  }
  const scale = element.scale ?? 0;
  element.converted_type = undefined;
  element.logical_type = undefined;
  return (v) => {
    const unscaled = unscaledOf(v);
    return unscaled === null ? v : formatUnscaled(unscaled, scale);
  };
}

// What hyparquet with `utf8: true` decodes as text: a BYTE_ARRAY that no earlier rule of its
// convert.js claims (JSON, BSON, geometry, geography; decimals are taken off before).
function readAsText(element: SchemaElement): boolean {
  if (element.type !== "BYTE_ARRAY") return false;
  if (["JSON", "BSON", "UTF8"].includes(element.converted_type ?? "")) return false;
  return !["GEOMETRY", "GEOGRAPHY"].includes(element.logical_type?.type ?? "");
}

function groupFix(node: SchemaTree): Fix | null {
  const { element, children } = node;
  // Variants keep their bytes raw (hyparquet decodes them itself).
  if (element.logical_type?.type === "VARIANT") return null;
  const repeated = children.length === 1 && children[0]!.element.repetition_type === "REPEATED";
  if (element.converted_type === "LIST" && repeated && children[0]!.children.length <= 1) {
    const list = children[0]!;
    const inner = list.children.length === 1 ? fixOf(list.children[0]!, false) : fixOf(list, true);
    return inner && ((v) => (Array.isArray(v) ? v.map(inner) : v));
  }
  if (element.converted_type === "MAP" && repeated && children[0]!.children.length === 2) {
    const entry = children[0]!.children;
    for (const part of entry) if (part.element.name !== "value") fixOf(part, false);
    const valuePart = entry.find((part) => part.element.name === "value");
    const inner = valuePart ? fixOf(valuePart, false) : null;
    return inner && ((v) => (isObject(v) ? mapValues(v, inner) : v));
  }
  const fields = children.flatMap((child) => {
    const fix = fixOf(child, false);
    return fix ? [[child.element.name, fix] as const] : [];
  });
  if (!fields.length) return null;
  return (v) => {
    if (isObject(v)) for (const [name, fix] of fields) v[name] = fix(v[name]);
    return v;
  };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);

function mapValues(v: Record<string, unknown>, fix: Fix): Record<string, unknown> {
  for (const key of Object.keys(v)) v[key] = fix(v[key]);
  return v;
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
    const fixes = exactDecimals(metadata);
    let rowStart = 0;
    let rowNumber = 0;
    // The footer counts the rows: progress by rows, where bytes of JSON would say nothing.
    const total = Number(metadata.num_rows);
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({
          file,
          metadata,
          rowStart,
          rowEnd,
          compressors,
          parsers: PARSERS,
          utf8: false,
        });
      } catch (err) {
        throw notParquet(`rows ${rowStart + 1}-${rowEnd} cannot be decoded (${(err as Error).message})`, err);
      }
      for (const row of rows) {
        for (const [name, fix] of fixes) row[name] = fix(row[name]);
        const record = plainValue(row) as Record<string, unknown>;
        rowNumber++;
        const bytes = Buffer.byteLength(JSON.stringify(record));
        yield { rowNumber, ok: true, record, bytes, progress: total > 0 ? rowNumber / total : 1 };
      }
      rowStart = rowEnd;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
