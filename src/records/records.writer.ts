// Writes rows into a dataset's table (catalog/dataset-table.ts): typed values plus the bookkeeping
// columns. Used by ingestion; rows are expected to be validated already, so a value that does not
// fit its column is a programming error (TypeError), not a client error.
import type { ClickHouse } from "../db/clickhouse.js";
import { canonicalKey, type Column } from "../catalog/columns.js";
import { tableRef } from "../catalog/dataset-table.js";
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

// JSON.rawJSON (Node >= 21) emits text as is. 18.16 reads a Decimal from a JSON number only, not
// from a string, and a JS number would lose digits: the canonical decimal text goes out raw.
const rawJSON = (JSON as unknown as { rawJSON(text: string): object }).rawJSON;

/**
 * The JSON representation of a value (what readers return) and what is sent to ClickHouse.
 * Throws ValueError when the value does not fit the column.
 */
export function encodeValue(column: Column, value: unknown): { json: unknown; wire: unknown } {
  switch (column.type) {
    case "STRING": {
      const s = parseString(value);
      return { json: s, wire: s };
    }
    case "INT32": {
      const n = parseInt32(value);
      return { json: n, wire: n };
    }
    case "INT64": {
      const n = parseInt64(value).toString(); // JSON has no 64-bit integers; ClickHouse reads "123"
      return { json: n, wire: n };
    }
    case "FLOAT64": {
      const n = parseFloat64(value);
      return { json: n, wire: n };
    }
    case "DECIMAL": {
      const text = parseDecimal(value, column);
      return { json: text, wire: rawJSON(text) };
    }
    case "BOOLEAN": {
      const b = parseBoolean(value);
      return { json: b, wire: b ? 1 : 0 };
    }
    case "DATE": {
      const d = parseDate(value);
      return { json: d, wire: d };
    }
    case "DATETIME": {
      // With the zone spelled out, best_effort parsing does not depend on the server's time zone.
      const iso = isoSeconds(parseDateTime(value, { truncate: true }));
      return { json: iso, wire: iso };
    }
  }
}

function toVersion(version: bigint | number): string {
  const v = typeof version === "number" && Number.isSafeInteger(version) ? BigInt(version) : version;
  if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) {
    throw new TypeError(`version must be a whole number from 0 to 2^64-1, got ${String(version)}`);
  }
  return v.toString();
}

/** Builds the row as ClickHouse receives it; exported for tests and for ingestion's dry runs. */
export function encodeRow(
  dataset: Pick<DatasetRef, "columns" | "keyColumns">,
  row: Record<string, unknown>,
  system: { version: string; runId: string; ingestedAt: string; deleted: 0 | 1 },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const json: Record<string, unknown> = {};
  for (const column of dataset.columns) {
    const value = row[column.name];
    if (value === null || value === undefined) {
      // A tombstone needs only its key; omitted fields take the type's default.
      if (system.deleted && !column.nullable && !dataset.keyColumns.includes(column.name)) continue;
      if (!column.nullable) throw new TypeError(`Column "${column.name}" cannot be null`);
      out[column.name] = null;
      json[column.name] = null;
      continue;
    }
    try {
      const encoded = encodeValue(column, value);
      out[column.name] = encoded.wire;
      json[column.name] = encoded.json;
    } catch (error) {
      if (error instanceof ValueError) {
        throw new TypeError(`Column "${column.name}" (${column.type}) ${error.message}`, { cause: error });
      }
      throw error;
    }
  }
  // The key is computed from the values as readers return them, so that "5", 5 and 5n are one key
  // and a client can rebuild a record's key from its values.
  out._key = canonicalKey(dataset.keyColumns, json);
  out._version = system.version;
  out._run_id = system.runId;
  out._ingested_at = system.ingestedAt;
  out._deleted = system.deleted;
  return out;
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
  const system = {
    version: toVersion(opts.version),
    runId: opts.runId,
    // UTC with T and Z: best_effort reads it the same whatever the server's time zone.
    ingestedAt: isoSeconds(opts.now ?? new Date()),
    deleted: opts.deleted ? (1 as const) : (0 as const),
  };
  const table = tableRef(database, dataset.tableName);
  for (let start = 0; start < rows.length; start += chunkSize) {
    const chunk = rows.slice(start, start + chunkSize).map((row, i) => {
      try {
        return encodeRow(dataset, row, system);
      } catch (error) {
        if (error instanceof TypeError) {
          throw new TypeError(`Row ${start + i}: ${error.message}`, { cause: error });
        }
        throw error;
      }
    });
    await ch.insert(table, chunk);
  }
  return rows.length;
}
