// Writes rows into a dataset's table (catalog/dataset-table.ts): typed values plus the bookkeeping
// columns. Used by ingestion; rows are expected to be validated already, so a value that does not
// fit its column is a programming error (TypeError), not a client error.
import type { ClickHouse, InsertStream } from "../db/clickhouse.js";
import { keyOfValues, type Column } from "../catalog/columns.js";
import { SYSTEM_COLUMNS, tableRef } from "../catalog/dataset-table.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
import { toRepresentation, ValueError } from "./values.js";
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
  /**
   * Every non-null value is in its column's JSON representation already (toRepresentation, as
   * the pipeline's final check leaves rows): only formatted, not parsed again.
   */
  represented?: boolean;
}

/**
 * Encodes rows of one dataset as TabSeparated lines (records/tsv.ts) for one write: the dataset's
 * columns, then the bookkeeping ones, in the order of {@link RowEncoder.columns}. Each value is
 * checked against its column: one that does not fit is a TypeError (rows come validated).
 */
export class RowEncoder {
  /** The columns of each line, in order: the INSERT names them. */
  readonly columns: string[];
  private readonly names: string[];
  private readonly represent: ((value: unknown) => unknown)[];
  private readonly format: ((json: unknown) => string)[];
  private readonly absent: (() => string)[];
  private readonly keyAt: number[];
  /** One row's values in their JSON representation; reused, as line() runs to completion. */
  private readonly values: unknown[];
  private readonly keyValues: unknown[];
  private readonly system: string;

  constructor(
    private readonly dataset: Pick<DatasetRef, "columns" | "keyColumns">,
    system: SystemValues,
  ) {
    const columns = dataset.columns;
    this.names = columns.map((c) => c.name);
    this.columns = [...this.names, ...Object.keys(SYSTEM_COLUMNS)];
    this.keyAt = dataset.keyColumns.map((k) => this.names.indexOf(k));
    this.represent = columns.map((c) => (system.represented ? (v) => v : (v) => toRepresentation(c, v)));
    this.format = columns.map(formatter);
    this.absent = columns.map((c) => {
      // A tombstone needs only its key; the other columns take the type's default.
      if (system.deleted && !c.nullable && !dataset.keyColumns.includes(c.name)) {
        const text = tsvDefault(c.type);
        return () => text;
      }
      if (c.nullable) return () => TSV_NULL;
      return () => {
        throw new TypeError(`Column "${c.name}" cannot be null`);
      };
    });
    this.values = new Array(columns.length);
    this.keyValues = new Array(this.keyAt.length);
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
    const { names, values } = this;
    for (let i = 0; i < names.length; i++) {
      const value = row[names[i]!];
      values[i] = value === null || value === undefined ? null : this.valueOf(i, value);
    }
    // The key is computed from the values as readers return them, so that "5", 5 and 5n are one
    // key and a client can rebuild a record's key from its values.
    for (let k = 0; k < this.keyAt.length; k++) this.keyValues[k] = values[this.keyAt[k]!];
    let line = "";
    for (let i = 0; i < names.length; i++) {
      const json = values[i];
      line += (json === null ? this.absent[i]!() : this.format[i]!(json)) + "\t";
    }
    return line + escapeTsv(keyOfValues(this.keyValues)) + this.system;
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

/** The TSV text of a value in its column's JSON representation. */
function formatter(column: Column): (json: unknown) => string {
  switch (column.type) {
    case "STRING":
      return (v) => escapeTsv(v as string);
    case "DATETIME":
      return (v) => tsvDateTime(new Date(v as string));
    case "BOOLEAN":
      return (v) => (v ? "1" : "0");
    default:
      return (v) => String(v);
  }
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
async function insertLines(
  ch: ClickHouse,
  database: string,
  tableName: string,
  columns: readonly string[],
  body: string,
): Promise<void> {
  if (body === "") return;
  await ch.insertText(insertStatement(database, tableName, columns), body);
}

function insertStatement(database: string, tableName: string, columns: readonly string[]): Sql {
  const names = join(columns.map((c) => sql`${ident(c)}`));
  return sql`INSERT INTO ${tableRef(database, tableName)} (${names}) FORMAT TabSeparated`;
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

/** Text gathered before it is handed to the socket: fewer, larger writes. */
const SEND_CHARS = 256 * 1024;
/**
 * How often an open insert is checked for rows; one that got none since the last check is ended.
 * A slow source (an API backing off, a filter dropping most rows) must not leave an INSERT's
 * socket silent until the client's request timeout fails the run.
 */
const IDLE_CHECK_MS = 1000;

/**
 * Writes a long sequence of rows (a pipeline run) through streaming inserts: each row becomes a
 * TSV line as it is written and goes to ClickHouse, which parses while more rows are made. After
 * `rowsPerInsert` rows, or when rows stop coming for a second or two, the insert is ended and the
 * next begins while the server stores the last, so memory holds the socket's buffer and at most
 * one unfinished insert besides the current one. The dataset's columns may grow between rows:
 * call {@link RowStream.columnsChanged}.
 */
export class RowStream {
  private encoder: RowEncoder | null = null;
  private insert: InsertStream | null = null;
  private rows = 0;
  private text = "";
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

  /** Adds a row; returns a promise only when the caller must wait (sending, or an insert ending). */
  write(row: Record<string, unknown>): Promise<void> | undefined {
    if (!this.encoder) {
      this.encoder = new RowEncoder(this.dataset, {
        runId: this.options.runId,
        version: nextRowVersion(),
        represented: this.options.represented,
      });
    }
    this.text += this.encoder.line(row);
    this.rows++;
    if (this.rows >= this.options.rowsPerInsert) return this.endInsert();
    if (this.text.length >= SEND_CHARS) return this.send();
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
    await this.finishing?.catch(() => {});
  }

  private start(): InsertStream {
    const statement = insertStatement(this.database, this.dataset.tableName, this.encoder!.columns);
    return (this.insert = this.ch.insertStream(statement, this.options.signal));
  }

  private async send(): Promise<void> {
    const text = this.text;
    this.text = "";
    this.sending = true;
    try {
      await (this.insert ?? this.start()).write(text);
    } finally {
      this.sending = false;
    }
  }

  private async endInsert(): Promise<void> {
    if (!this.encoder) return;
    // Taken at once: rows written while this insert ends go to the next one.
    const insert = this.insert ?? this.start();
    const text = this.text;
    const rows = this.rows;
    this.insert = null;
    this.encoder = null;
    this.text = "";
    this.rows = 0;
    this.rowsAtCheck = 0;
    const previous = this.finishing;
    const finishing = (async () => {
      try {
        await insert.write(text);
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
