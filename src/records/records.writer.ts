// Writes rows into a dataset's table (catalog/dataset-table.ts): typed values plus the bookkeeping
// columns. Used by ingestion; rows are expected to be validated already, so a value that does not
// fit its column is a programming error (TypeError), not a client error.
import type { ClickHouse } from "../db/clickhouse.js";
import { canonicalKey, type Column } from "../catalog/columns.js";
import { SYSTEM_COLUMNS, tableRef } from "../catalog/dataset-table.js";
import { ident, join, sql } from "../db/sql.js";
import {
  isoSeconds,
  parseBoolean,
  parseDate,
  parseDateTime,
  parseDecimal,
  parseFloat64,
  parseInt32,
  parseInt64,
  parseString,
  ValueError,
} from "./values.js";
import { escapeTsv, TSV_NULL, tsvDateTime, tsvDefault } from "./tsv.js";

export interface DatasetRef {
  id: string;
  tableName: string;
  columns: Column[];
  keyColumns: string[];
}

export interface WriteOptions {
  /** The row version; the highest per key wins (ReplacingMergeTree). */
  version: bigint | number;
  runId: string;
  /**
   * Writes tombstones: the rows' keys read as gone once this version is the highest. Tombstone
   * rows need only their key columns.
   */
  deleted?: boolean;
  /** The clock, for `_ingested_at`. */
  now?: Date;
  /** Rows per INSERT. */
  chunkSize?: number;
}

const DEFAULT_CHUNK = 10_000;

let lastVersion = 0n;

/**
 * The `_version` for rows written now: microseconds since the epoch, strictly increasing within a
 * process. Later writes win (ReplacingMergeTree keeps the highest), and incremental deliveries
 * take the rows whose `_version` is above their watermark. A retried run may use a new version:
 * it writes the same values.
 */
export function nextRowVersion(nowMs: number = Date.now()): bigint {
  const candidate = BigInt(nowMs) * 1000n;
  lastVersion = candidate > lastVersion ? candidate : lastVersion + 1n;
  return lastVersion;
}
const UINT64_MAX = 2n ** 64n - 1n;

/** The JSON representation of a value (what readers return). Throws ValueError when it does not fit. */
export function encodeValue(column: Column, value: unknown): unknown {
  switch (column.type) {
    case "STRING":
      return parseString(value);
    case "INT32":
      return parseInt32(value);
    case "INT64":
      return parseInt64(value).toString(); // JSON has no 64-bit integers
    case "FLOAT64":
      return parseFloat64(value);
    case "DECIMAL":
      return parseDecimal(value, column);
    case "BOOLEAN":
      return parseBoolean(value);
    case "DATE":
      return parseDate(value);
    case "DATETIME":
      return isoSeconds(parseDateTime(value, { truncate: true }));
  }
}

function toVersion(version: bigint | number): string {
  const v = typeof version === "number" && Number.isSafeInteger(version) ? BigInt(version) : version;
  if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) {
    throw new TypeError(`version must be a whole number from 0 to 2^64-1, got ${String(version)}`);
  }
  return v.toString();
}

export interface SystemValues {
  version: bigint | number;
  runId: string;
  /** The clock, for `_ingested_at`. */
  now?: Date;
  deleted?: boolean;
}

/**
 * Encodes rows of one dataset as TabSeparated lines (records/tsv.ts) for one write: the dataset's
 * columns, then the bookkeeping ones, in the order of {@link RowEncoder.columns}. Each value is
 * checked against its column: one that does not fit is a TypeError (rows come validated).
 */
export class RowEncoder {
  /** The columns of each line, in order: the INSERT names them. */
  readonly columns: string[];
  private readonly cells: ((value: unknown, key: unknown[]) => string)[];
  private readonly keyAt: Map<string, number>;
  private readonly system: string;

  constructor(
    private readonly dataset: Pick<DatasetRef, "columns" | "keyColumns">,
    system: SystemValues,
  ) {
    this.columns = [...dataset.columns.map((c) => c.name), ...Object.keys(SYSTEM_COLUMNS)];
    this.keyAt = new Map(dataset.keyColumns.map((k, i) => [k, i]));
    this.cells = dataset.columns.map((column) => this.cell(column, system.deleted ?? false));
    // _key comes first among the system columns; the rest is the same on every line.
    const tail = [
      toVersion(system.version),
      escapeTsv(system.runId),
      tsvDateTime(system.now ?? new Date()),
      system.deleted ? "1" : "0",
    ];
    this.system = `\t${tail.join("\t")}\n`;
  }

  /** One row as a TSV line, its line break included. */
  line(row: Record<string, unknown>): string {
    const key: unknown[] = new Array(this.dataset.keyColumns.length);
    let line = "";
    const columns = this.dataset.columns;
    for (let i = 0; i < columns.length; i++) {
      const column = columns[i]!;
      try {
        line += this.cells[i]!(row[column.name], key) + "\t";
      } catch (error) {
        if (error instanceof ValueError) {
          throw new TypeError(`Column "${column.name}" (${column.type}) ${error.message}`, { cause: error });
        }
        throw error;
      }
    }
    // The key is computed from the values as readers return them, so that "5", 5 and 5n are one
    // key and a client can rebuild a record's key from its values.
    return line + escapeTsv(canonicalKeyOf(this.dataset.keyColumns, key)) + this.system;
  }

  private cell(column: Column, deleted: boolean): (value: unknown, key: unknown[]) => string {
    const at = this.keyAt.get(column.name);
    const isKey = at !== undefined;
    // A tombstone needs only its key; the other columns take the type's default.
    const absent =
      deleted && !column.nullable && !isKey
        ? () => tsvDefault(column.type)
        : column.nullable
          ? () => TSV_NULL
          : () => {
              throw new TypeError(`Column "${column.name}" cannot be null`);
            };
    const text = textOf(column, isKey);
    return (value, key) => {
      if (value === null || value === undefined) return absent();
      const [json, out] = text(value);
      if (isKey) key[at] = json;
      return out;
    };
  }
}

/** Validates a non-null value; returns its JSON representation (for keys) and its TSV text. */
function textOf(column: Column, isKey: boolean): (value: unknown) => [unknown, string] {
  switch (column.type) {
    case "STRING":
      return (v) => {
        const s = parseString(v);
        return [s, escapeTsv(s)];
      };
    case "DATETIME":
      return (v) => {
        const date = parseDateTime(v, { truncate: true });
        return [isKey ? isoSeconds(date) : null, tsvDateTime(date)];
      };
    case "BOOLEAN":
      return (v) => {
        const b = parseBoolean(v);
        return [b, b ? "1" : "0"];
      };
    default:
      return (v) => {
        const json = encodeValue(column, v);
        return [json, String(json)];
      };
  }
}

function canonicalKeyOf(keyColumns: readonly string[], values: unknown[]): string {
  const row: Record<string, unknown> = {};
  keyColumns.forEach((k, i) => (row[k] = values[i]));
  return canonicalKey(keyColumns, row);
}

/** Inserts `rows` in chunks; returns how many were written. */
export async function writeRecords(
  ch: ClickHouse,
  database: string,
  dataset: DatasetRef,
  rows: Record<string, unknown>[],
  opts: WriteOptions,
): Promise<number> {
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new TypeError("chunkSize must be a positive integer");
  const encoder = new RowEncoder(dataset, opts);
  for (let start = 0; start < rows.length; start += chunkSize) {
    let body = "";
    const end = Math.min(rows.length, start + chunkSize);
    for (let i = start; i < end; i++) {
      try {
        body += encoder.line(rows[i]!);
      } catch (error) {
        if (error instanceof TypeError) throw new TypeError(`Row ${i}: ${error.message}`, { cause: error });
        throw error;
      }
    }
    await insertLines(ch, database, dataset.tableName, encoder.columns, body);
  }
  return rows.length;
}

/** Inserts lines a {@link RowEncoder} made (`columns` is its `columns`). */
export async function insertLines(
  ch: ClickHouse,
  database: string,
  tableName: string,
  columns: readonly string[],
  body: string,
): Promise<void> {
  if (body === "") return;
  const names = join(columns.map((c) => sql`${ident(c)}`));
  await ch.insertText(sql`INSERT INTO ${tableRef(database, tableName)} (${names}) FORMAT TabSeparated`, body);
}
