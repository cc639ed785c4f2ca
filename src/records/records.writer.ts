// Writes rows into a dataset's table (catalog/dataset-table.ts): typed values plus the bookkeeping
// columns. Used by ingestion; rows are expected to be validated already, so a value that does not
// fit its column is a programming error (TypeError), not a client error.
import type { ClickHouse, InsertStream } from "../db/clickhouse.js";
import { clickHouseType, keyOfValues, type Column } from "../catalog/columns.js";
import { SYSTEM_COLUMNS, tableRef } from "../catalog/dataset-table.js";
import type { Sql } from "../db/sql.js";
import { toRepresentation, ValueError } from "./values.js";
import { ByteWriter, defaultBytes, valueWriter, type ValueWriter } from "./row-binary.js";

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
  /** See {@link SystemValues.represented}. */
  represented?: boolean;
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

function toVersion(version: bigint | number): bigint {
  const v = typeof version === "number" && Number.isSafeInteger(version) ? BigInt(version) : version;
  if (typeof v !== "bigint" || v < 0n || v > UINT64_MAX) {
    throw new TypeError(`version must be a whole number from 0 to 2^64-1, got ${String(version)}`);
  }
  return v;
}

export interface SystemValues {
  version: bigint | number;
  runId: string;
  /** The clock, for `_ingested_at`. */
  now?: Date;
  deleted?: boolean;
  /**
   * Every non-null value is in its column's JSON representation already (toRepresentation, as
   * the pipeline's final check leaves rows): only formatted, not parsed again.
   */
  represented?: boolean;
}

/**
 * Encodes rows of one dataset as RowBinary (records/row-binary.ts) for one write: the dataset's
 * columns, then the bookkeeping ones, in the order of {@link RowEncoder.columns}. Each value is
 * checked against its column: one that does not fit is a TypeError (rows come validated).
 */
export class RowEncoder {
  /** The columns of each row, in order: the INSERT names them. */
  readonly columns: string[];
  private readonly names: string[];
  private readonly represent: ((value: unknown) => unknown)[];
  private readonly writers: ValueWriter[];
  private readonly nullable: boolean[];
  /** A non-null column's bytes when the row has no value: a tombstone's default, or an error. */
  private readonly absent: ((out: ByteWriter) => void)[];
  private readonly keyAt: number[];
  /** One row's values in their JSON representation; reused, as encode() runs to completion. */
  private readonly values: unknown[];
  private readonly keyValues: unknown[];
  private readonly version: bigint;
  /** The bookkeeping columns after `_version`: the same bytes on every row. */
  private readonly system: Buffer;

  constructor(
    private readonly dataset: Pick<DatasetRef, "columns" | "keyColumns">,
    system: SystemValues,
  ) {
    const columns = dataset.columns;
    this.names = columns.map((c) => c.name);
    this.columns = [...this.names, ...Object.keys(SYSTEM_COLUMNS)];
    this.keyAt = dataset.keyColumns.map((k) => this.names.indexOf(k));
    this.represent = columns.map((c) => (system.represented ? (v) => v : (v) => toRepresentation(c, v)));
    this.writers = columns.map((c) => valueWriter(c));
    this.nullable = columns.map((c) => c.nullable);
    this.absent = columns.map((c) => {
      // A tombstone needs only its key; the other columns take the type's default.
      if (system.deleted && !dataset.keyColumns.includes(c.name)) {
        const bytes = defaultBytes(c);
        return (out) => out.bytes(bytes);
      }
      return () => {
        throw new TypeError(`Column "${c.name}" cannot be null`);
      };
    });
    this.values = new Array(columns.length);
    this.keyValues = new Array(this.keyAt.length);
    this.version = toVersion(system.version);
    const tail = new ByteWriter();
    tail.string(system.runId);
    tail.uint32(ingestedAt(system.now ?? new Date()));
    tail.uint8(system.deleted ? 1 : 0);
    this.system = tail.take();
  }

  /**
   * Appends one row, with the write's version unless `version` is given. On a TypeError nothing of
   * the row is kept.
   */
  encode(row: Record<string, unknown>, out: ByteWriter, version?: bigint): void {
    const { names, values } = this;
    for (let i = 0; i < names.length; i++) {
      const value = row[names[i]!];
      values[i] = value === null || value === undefined ? null : this.valueOf(i, value);
    }
    // The key is computed from the values as readers return them, so that "5", 5 and 5n are one
    // key and a client can rebuild a record's key from its values.
    for (let k = 0; k < this.keyAt.length; k++) this.keyValues[k] = values[this.keyAt[k]!];
    const start = out.length;
    try {
      for (let i = 0; i < names.length; i++) {
        const json = values[i];
        if (this.nullable[i]) {
          out.uint8(json === null ? 1 : 0);
          if (json !== null) this.writers[i]!(out, json);
        } else if (json === null) this.absent[i]!(out);
        else this.writers[i]!(out, json);
      }
    } catch (error) {
      out.truncate(start);
      throw error;
    }
    out.string(keyOfValues(this.keyValues));
    out.uint64(version ?? this.version);
    out.bytes(this.system);
  }

  /** One row's bytes on their own (tests, and callers writing a row at a time). */
  row(row: Record<string, unknown>): Buffer {
    const out = new ByteWriter();
    this.encode(row, out);
    return out.take();
  }

  private valueOf(i: number, value: unknown): unknown {
    try {
      return this.represent[i]!(value);
    } catch (error) {
      if (!(error instanceof ValueError)) throw error;
      const column = this.dataset.columns[i]!;
      throw new TypeError(`Column "${column.name}" (${column.type}) ${error.message}`, { cause: error });
    }
  }
}

/** `_ingested_at` as DateTime seconds. */
function ingestedAt(now: Date): number {
  const seconds = Math.floor(now.getTime() / 1000);
  if (!(seconds >= 0 && seconds <= 0xffffffff)) throw new RangeError(`DateTime out of range: ${seconds}`);
  return seconds;
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
  const out = new ByteWriter();
  for (let start = 0; start < rows.length; start += chunkSize) {
    const end = Math.min(rows.length, start + chunkSize);
    for (let i = start; i < end; i++) {
      try {
        encoder.encode(rows[i]!, out);
      } catch (error) {
        if (error instanceof TypeError) throw new TypeError(`Row ${i}: ${error.message}`, { cause: error });
        throw error;
      }
    }
    const insert = ch.insertRowBinary(tableRef(database, dataset.tableName), typedColumns(dataset));
    await insert.write(out.take());
    await insert.end();
  }
  return rows.length;
}

/** The columns a {@link RowEncoder} writes, in its order, with their ClickHouse types. */
function typedColumns(dataset: Pick<DatasetRef, "columns">): { name: string; type: Sql }[] {
  return [
    ...dataset.columns.map((c) => ({ name: c.name, type: clickHouseType(c) })),
    ...Object.entries(SYSTEM_COLUMNS).map(([name, type]) => ({ name, type })),
  ];
}

export interface RowStreamOptions {
  runId: string;
  /** Rows per INSERT statement; each insert's rows get a version of their own. */
  rowsPerInsert: number;
  /** Aborts the insert being sent. */
  signal?: AbortSignal;
  /** Called when an insert's rows are stored, with their number. */
  onStored?: (rows: number) => void;
  /** See {@link SystemValues.represented}. */
  represented?: boolean;
}

/** Bytes gathered before they are handed to the socket: fewer, larger writes. */
const SEND_BYTES = 256 * 1024;
/**
 * How often an open insert is checked for rows; one that got none since the last check is ended.
 * A slow source (an API backing off, a filter dropping most rows) must not leave an INSERT's
 * socket silent until the client's request timeout fails the run.
 */
const IDLE_CHECK_MS = 1000;

/**
 * Writes a long sequence of rows (a pipeline run) through streaming inserts: each row is encoded
 * as RowBinary as it is written and goes to ClickHouse, which parses while more rows are made. After
 * `rowsPerInsert` rows, or when rows stop coming for a second or two, the insert is ended and the
 * next begins while the server stores the last, so memory holds the socket's buffer and at most
 * one unfinished insert besides the current one. The dataset's columns may grow between rows:
 * call {@link RowStream.columnsChanged}.
 */
export class RowStream {
  private encoder: RowEncoder | null = null;
  private insert: InsertStream | null = null;
  private rows = 0;
  private readonly out = new ByteWriter();
  /** The insert being ended (and every one before it); a failure surfaces from the next call. */
  private finishing: Promise<void> | null = null;
  private sending = false;
  private rowsAtCheck = 0;
  private readonly idleCheck: NodeJS.Timeout;

  constructor(
    private readonly ch: ClickHouse,
    private readonly database: string,
    private readonly dataset: DatasetRef,
    private readonly options: RowStreamOptions,
  ) {
    this.idleCheck = setInterval(() => {
      if (this.encoder && !this.sending && this.rows === this.rowsAtCheck)
        void this.endInsert().catch(() => {});
      this.rowsAtCheck = this.rows;
    }, IDLE_CHECK_MS).unref();
  }

  /**
   * Adds a row; returns a promise only when the caller must wait (sending, or an insert ending).
   * `supersedes`: the row replaces one written before under its key, maybe in this very insert,
   * so it gets a version of its own, above every version given out so far.
   */
  write(row: Record<string, unknown>, supersedes = false): Promise<void> | undefined {
    if (!this.encoder) {
      this.encoder = new RowEncoder(this.dataset, {
        runId: this.options.runId,
        version: nextRowVersion(),
        represented: this.options.represented,
      });
    }
    this.encoder.encode(row, this.out, supersedes ? nextRowVersion() : undefined);
    this.rows++;
    if (this.rows >= this.options.rowsPerInsert) return this.endInsert();
    if (this.out.length >= SEND_BYTES) return this.send();
    return undefined;
  }

  /** Ends the current insert: rows written from now on name the dataset's columns as they are. */
  columnsChanged(): Promise<void> {
    return this.endInsert();
  }

  /** Sends what is left and waits until every row is stored. */
  async finish(): Promise<void> {
    clearInterval(this.idleCheck);
    await this.endInsert();
    await this.finishing;
  }

  /** Stops the insert being sent and waits for the one ending, ignoring their failures. */
  async abort(): Promise<void> {
    clearInterval(this.idleCheck);
    this.insert?.abort();
    this.insert = null;
    this.encoder = null;
    this.out.take();
    await this.finishing?.catch(() => {});
  }

  private start(): InsertStream {
    const table = tableRef(this.database, this.dataset.tableName);
    return (this.insert = this.ch.insertRowBinary(table, typedColumns(this.dataset), this.options.signal));
  }

  private async send(): Promise<void> {
    const bytes = this.out.take();
    this.sending = true;
    try {
      await (this.insert ?? this.start()).write(bytes);
    } finally {
      this.sending = false;
    }
  }

  private async endInsert(): Promise<void> {
    if (!this.encoder) return;
    // Taken at once: rows written while this insert ends go to the next one.
    const insert = this.insert ?? this.start();
    const bytes = this.out.take();
    const rows = this.rows;
    this.insert = null;
    this.encoder = null;
    this.rows = 0;
    this.rowsAtCheck = 0;
    const previous = this.finishing;
    const finishing = (async () => {
      try {
        await insert.write(bytes);
        await previous;
      } catch (error) {
        insert.abort();
        throw error;
      }
      await insert.end();
      this.options.onStored?.(rows);
    })();
    finishing.catch(() => {}); // observed by the next endInsert(), finish() or abort()
    this.finishing = finishing;
    // One insert ends while the next is sent: the one before must be stored first.
    await previous;
  }
}
