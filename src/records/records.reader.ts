// Reads a dataset's records from ClickHouse: keyset pages in any column order, counts, single
// records and grouped aggregates. Every read sees the latest version of each key (FINAL) and
// skips tombstones (LIVE). GraphQL-independent: errors are AppErrors, pages are pagination.ts pages.
import type { ClickHouseSettings } from "@clickhouse/client";
import { toClickHouseError, type ClickHouse } from "../db/clickhouse.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
import { badInput } from "../errors.js";
import type { Column } from "../catalog/columns.js";
import { LIVE, liveRows, tableRef } from "../catalog/dataset-table.js";
import { pageRequest, type Page, type PageArgs, type PageFlag, type PageLimits } from "../pagination.js";
import { compileWindow, type WindowInput } from "./window.js";
import { compileFilter, type RecordFilter } from "./filter.js";
import { engineAbilities, engineExport, type EngineAbilities, type ExportFormat } from "./export.engine.js";
import {
  decodeSortCursor,
  encodeSortCursor,
  keysetPredicate,
  orderByClause,
  recordSortTerms,
  type RecordOrder,
  type SortTerm,
} from "./order.js";
import {
  formatUnscaled,
  fromTransport,
  isNumeric,
  parseString,
  transportExpr,
  ValueError,
  type ValueType,
} from "./values.js";
import type { DatasetRef } from "./records.writer.js";
import { bucketOf, TIME_BUCKETS, type TimeBucket } from "./calendar.js";

/** A record: its canonical key and its values in their JSON representation (columns.ts). */
export interface RecordRow {
  key: string;
  values: Record<string, unknown>;
}

export interface RecordPageArgs extends PageArgs {
  filter?: RecordFilter | null;
  orderBy?: RecordOrder | null;
  /** Only these columns in each record's values (default: all): ClickHouse reads no others. */
  columns?: readonly string[] | null;
}

export type { TimeBucket };

/**
 * The rows an export sends: those matching `filter` after the key `after`, at most `limit`
 * (null: all).
 */
export interface ExportRange {
  filter: RecordFilter | null | undefined;
  after: string | null;
  limit: number | null;
}
/**
 * How an export is cut into key ranges the server reads side by side, on a server that reads a
 * FINAL in one stream (EngineAbilities.finalInOneStream).
 */
export interface ExportSplit {
  /** Ranges at most; as many as the server has threads (max_threads) up to this. 1: never cut. */
  ranges: number;
  /** Rows below which an export is read in one range (estimated from the sample). */
  fromRows: number;
  /** One key in this many is sampled for the ranges' bounds. */
  sampleEvery: number;
}

export const EXPORT_SPLIT: ExportSplit = { ranges: 8, fromRows: 65_536, sampleEvery: 1024 };

export type MetricFn = "COUNT" | "SUM" | "AVG" | "MIN" | "MAX" | "UNIQ" | "QUANTILE";

export interface GroupByInput {
  column: string;
  /** DATE and DATETIME columns only; weeks start on Monday; MINUTE and HOUR need a DATETIME. */
  bucket?: TimeBucket | null;
}

export interface MetricInput {
  fn: MetricFn;
  /** Required except for COUNT, which without a column counts rows (with one: non-NULL values). */
  column?: string | null;
  /** QUANTILE only: the level, strictly between 0 and 1. */
  q?: number | null;
  /** The metric's key in the result; defaults to `count`, `sum_price`, `quantile_price_0_95`. */
  alias?: string | null;
}

export interface AggregateArgs {
  groupBy?: GroupByInput[] | null;
  metrics: MetricInput[];
  filter?: RecordFilter | null;
  /** Only rows whose DATETIME column is in the trailing span ending now (window.ts). */
  window?: WindowInput | null;
  first?: number | null;
  after?: string | null;
}

/**
 * One group: its values keyed by column name (bucketed to the start of the hour, day, Monday or
 * month), and the metrics keyed by alias. COUNT and UNIQ are numbers; SUM of INT32/INT64/DECIMAL
 * is an exact string, of FLOAT64 a number; AVG and QUANTILE are numbers (null over no values);
 * MIN and MAX take the column's representation.
 */
export interface AggregateRow {
  group: Record<string, unknown>;
  metrics: Record<string, unknown>;
}

export const AGGREGATE_LIMITS = { maxGroupBy: 5, maxMetrics: 10 } as const;

const ALIAS = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

type RawRow = Record<string, unknown>;

interface CompiledMetric {
  alias: string;
  expr: Sql;
  decode(raw: unknown): unknown;
}

const asCount = (raw: unknown) => Number(raw ?? 0);

// Exports stream: without wait_end_of_query the server sends rows as it produces them (an error
// after the first rows then arrives as a "Code: N, ..." line, which stream() turns into an
// error). 18.16 sorts FINAL ... ORDER BY _key in memory; past this size it sorts on disk instead.
/** Bytes of an export held back to check for an error the server appended (exportBytes). */
const TAIL_BYTES = 4096;
// 18.16: "Code: 394, e.displayText() = DB::Exception: …"; current servers: "Code: 394. DB::Exception: …".
const TRAILING_ERROR = /Code: \d+[.,] (e\.displayText\(\) = )?DB::Exception[^\n]*\n?$/;

const STREAM_SETTINGS: ClickHouseSettings = { max_bytes_before_external_sort: String(512 * 1024 * 1024) };

/**
 * An export's bytes as they come, failing instead of passing on an error the server appended. A
 * server that fails after the first rows appends its error to the body and ends it as if complete:
 * the last chunk (at least TAIL_BYTES of the output) is held back until the next arrives or the
 * output ends, and an error there fails the stream instead of reaching the client as data. Chunks
 * pass on whole; a short one joins the held bytes' last TAIL_BYTES (at most twice that is ever
 * held or copied). Given back before its first read (a client gone before the first byte), it gives
 * the output back too, which stops the statement: a generator not started yet would skip that.
 */
export function withoutTrailingError(output: AsyncIterable<Buffer>): AsyncIterableIterator<Buffer> {
  const source = output[Symbol.asyncIterator]();
  const checked = checkedTail(source);
  let started = false;
  return {
    next() {
      started = true;
      return checked.next();
    },
    async return() {
      if (!started) {
        started = true;
        await source.return?.();
      }
      return checked.return(undefined);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

async function* checkedTail(source: AsyncIterator<Buffer>): AsyncGenerator<Buffer, undefined> {
  try {
    let held: Buffer = Buffer.alloc(0);
    for await (const chunk of { [Symbol.asyncIterator]: () => source }) {
      if (chunk.length >= TAIL_BYTES) {
        if (held.length) yield held;
        held = chunk;
        continue;
      }
      if (held.length > TAIL_BYTES) {
        yield held.subarray(0, held.length - TAIL_BYTES);
        held = held.subarray(held.length - TAIL_BYTES);
      }
      held = Buffer.concat([held, chunk]);
    }
    const failure = TRAILING_ERROR.exec(held.subarray(-TAIL_BYTES).toString("latin1"));
    if (failure) throw new Error(failure[0].trim());
    if (held.length) yield held;
    return undefined;
  } catch (error) {
    throw toClickHouseError(error);
  }
}

export class RecordsReader {
  #threads: Promise<number> | null = null;

  constructor(
    private readonly ch: ClickHouse,
    private readonly database: string,
    private readonly limits: PageLimits,
    private readonly split: ExportSplit = EXPORT_SPLIT,
  ) {}

  /**
   * One page of records in `orderBy` order (then by key). Cursors are keyset positions: a page
   * after a cursor starts right after that row's sort values, whatever was written since.
   */
  async page(dataset: DatasetRef, args: RecordPageArgs): Promise<Page<RecordRow>> {
    const request = pageRequest(args, this.limits);
    const where = compileFilter(dataset, args.filter);
    const terms = recordSortTerms(dataset.columns, args.orderBy);
    const forward = request.direction === "forward";
    const anchor = forward ? request.after : request.before;
    const key = anchor === null ? null : decodeSortCursor(terms, anchor, forward ? "after" : "before");
    const from = liveRows(this.database, dataset.tableName);
    const beyond = key === null ? sql`1` : keysetPredicate(terms, key, !forward);

    // Two phases: the subquery picks the page's keys reading only the key, filter and sort
    // columns; the outer query reads and formats whole rows for those keys alone (an index lookup
    // on _key). In one query ClickHouse would read every column of every matching row and format
    // them all before sorting. Repeating LIVE and the filter outside keeps a version written
    // between the two reads from slipping in.
    const order = orderByClause(terms, !forward);
    const { read, shown } = pageColumns(dataset.columns, terms, args.columns);
    const pageQuery = (range: Sql) =>
      this.ch.query<RawRow>(sql`
        SELECT ${recordSelect(read)} FROM ${from}
        WHERE _key IN (
          SELECT _key FROM ${from}
          WHERE ${LIVE} AND ${where} AND ${beyond} AND ${range}
          ORDER BY ${order}
          LIMIT ${request.size + 1}
        ) AND ${LIVE} AND ${where}
        ORDER BY ${order}`);
    // In key order without a filter, the key range a page can span is bounded first (keyBound),
    // so FINAL merges that range alone instead of everything past the cursor. The bound holds
    // `size + 1` stored rows; when superseded versions or deletions leave fewer live rows in it,
    // the page is read again unbounded.
    const bound =
      args.filter == null && terms.length === 1 && terms[0]!.label === "_key"
        ? this.keyBound(dataset, beyond, forward, request.size + 1)
        : null;
    let rows = await pageQuery(bound ?? sql`1`);
    if (bound !== null && rows.length <= request.size) rows = await pageQuery(sql`1`);
    // The side behind the cursor is a query of its own, run only when asked for (PageFlag).
    const otherSide: PageFlag =
      key === null ? false : () => this.exists(from, sql`${where} AND NOT (${beyond})`);

    const more = rows.length > request.size;
    const items = rows.slice(0, request.size).map((row) => toRecord(read, row));
    if (!forward) items.reverse();
    const cursors = items.map((item) => encodeSortCursor(terms, sortValues(terms, item)));
    // Sort columns were read for the cursors; a record shows the columns asked for only.
    if (shown.size < read.length) {
      for (const item of items) {
        for (const name of Object.keys(item.values)) if (!shown.has(name)) delete item.values[name];
      }
    }
    return {
      items,
      cursors,
      hasNextPage: forward ? more : otherSide,
      hasPreviousPage: forward ? otherSide : more,
    };
  }

  /**
   * `_key` within the first `rows` stored rows past the cursor, versions and deletions included:
   * read without FINAL, where the engine goes by the primary key alone.
   */
  private keyBound(dataset: DatasetRef, beyond: Sql, forward: boolean, rows: number): Sql {
    const stored = tableRef(this.database, dataset.tableName);
    const edge = sql`SELECT _key FROM ${stored} WHERE ${beyond} ORDER BY _key ${forward ? sql`ASC` : sql`DESC`} LIMIT ${rows}`;
    return forward
      ? sql`_key <= (SELECT max(_key) FROM (${edge}))`
      : sql`_key >= (SELECT min(_key) FROM (${edge}))`;
  }

  /** How many live records match the filter (exact: count() over FINAL). */
  async count(
    dataset: DatasetRef,
    filter?: RecordFilter | null,
    after: string | null = null,
  ): Promise<number> {
    const where = compileFilter(dataset, filter);
    const [row] = await this.ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM ${liveRows(this.database, dataset.tableName)} WHERE ${LIVE} AND ${where} AND ${afterKey(after)}`,
    );
    return Number(row?.n ?? 0);
  }

  /**
   * The live records matching the filter in key order, at most `limit` of them, as batches in the
   * order ClickHouse sends them: memory stays constant whatever the number of rows, and a slow
   * consumer slows the ClickHouse response down (backpressure) instead of buffering it. Resolves
   * once ClickHouse has accepted the query, so a query that cannot start fails here; a failure
   * afterwards (or `signal` aborting) ends the iteration with a ClickHouseError.
   */
  async stream(
    dataset: DatasetRef,
    filter: RecordFilter | null | undefined,
    limit: number,
    signal?: AbortSignal,
    after: string | null = null,
  ): Promise<AsyncIterable<RecordRow[]>> {
    const where = compileFilter(dataset, filter);
    const query = sql`
      SELECT ${recordSelect(dataset.columns)} FROM ${liveRows(this.database, dataset.tableName)}
      WHERE ${LIVE} AND ${where} AND ${afterKey(after)}
      ORDER BY _key
      LIMIT ${limit}`;
    const rows = await this.streamQuery(query, signal);
    const columns = dataset.columns;
    return (async function* batches() {
      for await (const batch of rows) yield batch.map((row) => toRecord(columns, row));
    })();
  }

  /**
   * The statement (with its FORMAT) that makes ClickHouse write an export, or null when this
   * dataset and format need the Node path (export.engine.ts).
   */
  async exportStatement(dataset: DatasetRef, range: ExportRange, format: ExportFormat): Promise<Sql | null> {
    const where = sql`${compileFilter(dataset, range.filter)} AND ${afterKey(range.after)}`;
    const rows = (keys: Sql) => sql`
      SELECT ${recordSelect(dataset.columns, false)} FROM ${liveRows(this.database, dataset.tableName)}
      WHERE ${LIVE} AND ${where} AND ${keys}`;
    const engine = await this.engine();
    const whole = engineExport(format, dataset.columns, [rows(sql`1`)], range.limit, engine);
    if (whole === null || !engine.finalInOneStream || this.split.ranges < 2) return whole;
    const bounds = await this.exportBounds(dataset, where);
    if (bounds.length === 0) return whole;
    const ranges = [...bounds, null].map((bound, i) => {
      const above = i === 0 ? sql`1` : sql`_key > ${bounds[i - 1]!}`;
      return rows(bound === null ? above : sql`${above} AND _key <= ${bound}`);
    });
    return engineExport(format, dataset.columns, ranges, range.limit, engine);
  }

  /**
   * Keys that cut the rows `where` selects into key ranges of about equal size, as many ranges as
   * the server has threads (at most `split.ranges`); none for fewer than `split.fromRows` rows.
   * From a sample of the stored keys (one in `sampleEvery`, by hash, all versions of a key alike):
   * without FINAL, so a few rows not live weigh in; the ranges are only ever uneven by it.
   */
  private async exportBounds(dataset: DatasetRef, where: Sql): Promise<string[]> {
    const { ranges, fromRows, sampleEvery } = this.split;
    const parts = Math.min(ranges, await this.threads());
    if (parts < 2) return [];
    const [sample] = await this.ch.query<{ bounds: string[] }>(sql`
      SELECT if(length(keys) * ${sampleEvery} < ${fromRows}, emptyArrayString(),
        arrayMap(i -> keys[intDiv((i + 1) * length(keys), ${parts}) + 1], range(${parts - 1}))) AS bounds
      FROM (
        SELECT arraySort(groupArray(_key)) AS keys FROM ${tableRef(this.database, dataset.tableName)}
        WHERE cityHash64(_key) % ${sampleEvery} = 0 AND ${where}
      )`);
    return [...new Set(sample?.bounds ?? [])];
  }

  /**
   * The live records matching the filter in key order after `after` (a key; null from the start),
   * at most `limit` (all when null), as ClickHouse writes them in `format` (export.engine.ts): raw
   * bytes, streamed with backpressure. Null when this dataset and format need the Node path.
   */
  async exportBytes(
    dataset: DatasetRef,
    range: ExportRange,
    format: ExportFormat,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Buffer> | null> {
    const statement = await this.exportStatement(dataset, range, format);
    if (statement === null) return null;
    const output = await this.ch.output(statement, STREAM_SETTINGS, signal);
    return withoutTrailingError(output);
  }

  /**
   * The threads the server gives a statement (max_threads), asked once; like ClickHouse.version(),
   * a failed ask is not remembered.
   */
  private threads(): Promise<number> {
    this.#threads ??= this.ch
      .query<{ n: string }>(sql`SELECT value AS n FROM system.settings WHERE name = 'max_threads'`)
      .then(
        // "2", or "auto(2)" on servers that say where the number came from.
        ([row]) => Number(/\d+/.exec(row?.n ?? "")?.[0] ?? 1),
        (error: unknown) => {
          this.#threads = null;
          throw error;
        },
      );
    return this.#threads;
  }

  /** What the server can do, from its version (which ClickHouse.version() asks once). */
  private async engine(): Promise<EngineAbilities> {
    return engineAbilities((await this.ch.version()).text);
  }

  /**
   * The highest row version the table holds (0 when empty), tombstones included: rows written
   * after this call carry a higher one, so it bounds what a read started now can have missed.
   */
  async maxVersion(dataset: Pick<DatasetRef, "tableName">): Promise<bigint> {
    const [row] = await this.ch.query<{ v: string }>(
      sql`SELECT toString(max(_version)) AS v FROM ${tableRef(this.database, dataset.tableName)}`,
    );
    return BigInt(row?.v ?? "0");
  }

  /**
   * The latest version of each record whose `_version` is above `after` (all records when null) and
   * at most `upTo`, in key order, streamed like {@link stream}. With `tombstones`, deleted records
   * come too, marked `deleted` (their values as the deletion wrote them).
   */
  async changes(
    dataset: DatasetRef,
    range: { after: bigint | null; upTo: bigint | null; tombstones: boolean },
    signal?: AbortSignal,
  ): Promise<AsyncIterable<(RecordRow & { deleted: boolean })[]>> {
    const conditions = [
      range.tombstones ? sql`1` : LIVE,
      range.after === null ? sql`1` : sql`_version > ${range.after}`,
      range.upTo === null ? sql`1` : sql`_version <= ${range.upTo}`,
    ];
    const rows = await this.streamQuery(
      sql`
        SELECT ${recordSelect(dataset.columns)}, _deleted FROM ${liveRows(this.database, dataset.tableName)}
        WHERE ${join(conditions, " AND ")}
        ORDER BY _key`,
      signal,
    );
    const columns = dataset.columns;
    return (async function* batches() {
      for await (const batch of rows) {
        yield batch.map((row) => ({ ...toRecord(columns, row), deleted: Number(row._deleted) === 1 }));
      }
    })();
  }

  /** Rows of a query as ClickHouse sends them, in batches (see {@link stream}). */
  private async streamQuery(query: Sql, signal?: AbortSignal): Promise<AsyncIterable<RawRow[]>> {
    const result = await this.ch.client
      .query({
        query: query.text,
        format: "JSONEachRow",
        clickhouse_settings: STREAM_SETTINGS,
        ...(signal ? { abort_signal: signal } : {}),
      })
      .catch((error: unknown) => {
        throw toClickHouseError(error);
      });
    return (async function* batches() {
      let ended = false;
      try {
        for await (const lines of result.stream<RawRow>()) {
          const batch: RawRow[] = [];
          for (const line of lines) {
            // 18.16 reports an error after the first rows by appending it as text to the body.
            if (!line.text.startsWith("{")) throw new Error(line.text);
            batch.push(JSON.parse(line.text) as RawRow);
          }
          if (batch.length > 0) yield batch;
        }
        ended = true;
      } catch (error) {
        throw toClickHouseError(error);
      } finally {
        // Stopped early (the consumer returned or failed): end the HTTP response from ClickHouse.
        if (!ended) result.close();
      }
    })();
  }

  /** The live record with this canonical key (see columns.ts canonicalKey), or null. */
  async byKey(dataset: DatasetRef, key: string): Promise<RecordRow | null> {
    try {
      parseString(key);
    } catch (error) {
      if (error instanceof ValueError) throw badInput("Invalid key", { argument: "key" });
      throw error;
    }
    const [row] = await this.ch.query<RawRow>(sql`
      SELECT ${recordSelect(dataset.columns)} FROM ${liveRows(this.database, dataset.tableName)}
      WHERE _key = ${key} AND ${LIVE}
      LIMIT 1`);
    return row ? toRecord(dataset.columns, row) : null;
  }

  /** Metrics per group, groups in ascending order of their values (NULL last), paged by keyset. */
  async aggregate(dataset: DatasetRef, args: AggregateArgs, now = new Date()): Promise<Page<AggregateRow>> {
    const request = pageRequest({ first: args.first, after: args.after }, this.limits);
    const terms = groupTerms(dataset.columns, args.groupBy);
    const metrics = compileMetrics(dataset.columns, args.metrics);
    const where = sql`${compileFilter(dataset, args.filter)} AND ${compileWindow(dataset.columns, args.window, now)}`;
    const key = request.after === null ? null : decodeSortCursor(terms, request.after, "after");
    const from = liveRows(this.database, dataset.tableName);

    // Without groupBy there is one group, which ClickHouse returns even over no rows; nothing
    // comes after it.
    if (terms.length === 0 && key !== null) {
      return { items: [], cursors: [], hasNextPage: false, hasPreviousPage: true };
    }
    const beyond = key === null ? sql`1` : keysetPredicate(terms, key, false);
    const selects = [
      ...terms.map((t, i) => sql`${transportExpr(t.type, t.expr)} AS ${ident(`_g${i}`)}`),
      ...metrics.map((m, i) => sql`${m.expr} AS ${ident(`_m${i}`)}`),
    ];
    const grouping =
      terms.length === 0
        ? sql.empty
        : sql`GROUP BY ${join(terms.map((t) => t.expr))} ORDER BY ${orderByClause(terms, false)}`;

    const [rows, before] = await Promise.all([
      this.ch.query<RawRow>(sql`
        SELECT ${join(selects)} FROM ${from}
        WHERE ${LIVE} AND ${where} AND ${beyond}
        ${grouping}
        LIMIT ${request.size + 1}`),
      key === null ? false : this.exists(from, sql`${where} AND NOT (${beyond})`),
    ]);

    const items = rows.slice(0, request.size).map((row) => ({
      group: Object.fromEntries(terms.map((t, i) => [groupName(t), fromTransport(t.type, row[`_g${i}`])])),
      metrics: Object.fromEntries(metrics.map((m, i) => [m.alias, m.decode(row[`_m${i}`])])),
    }));
    return {
      items,
      cursors: items.map((item) =>
        encodeSortCursor(
          terms,
          terms.map((t) => item.group[groupName(t)]),
        ),
      ),
      hasNextPage: rows.length > request.size,
      hasPreviousPage: before,
    };
  }

  // Whether any live row matching `condition` exists: one probe with LIMIT 1, not a count.
  private async exists(from: Sql, condition: Sql): Promise<boolean> {
    const rows = await this.ch.query(
      sql`SELECT 1 AS found FROM ${from} WHERE ${LIVE} AND ${condition} LIMIT 1`,
    );
    return rows.length > 0;
  }
}

// Columns are selected under aliases (_c0, _c1, ...) rather than their own names: in ClickHouse
// an alias is visible everywhere in the query, so `toString(x) AS x` would change what `x` means
// in WHERE and ORDER BY. Dataset column names cannot start with an underscore.
/** Rows after a key, for an export that resumes where a cut-off one stopped. */
function afterKey(after: string | null): Sql {
  return after === null ? sql`1` : sql`_key > ${after}`;
}

/**
 * The columns a page reads (those asked for, plus the sort columns its cursors need) and those it
 * shows. Unknown or repeated names are BAD_USER_INPUT.
 */
export function pageColumns(
  columns: readonly Column[],
  terms: readonly SortTerm[],
  asked: readonly string[] | null | undefined,
): { read: readonly Column[]; shown: Set<string> } {
  if (asked == null) return { read: columns, shown: new Set(columns.map((c) => c.name)) };
  const shown = new Set(asked);
  const unknown = asked.filter((name) => !columns.some((c) => c.name === name));
  if (unknown.length > 0 || shown.size !== asked.length) {
    throw badInput(
      `columns: ${unknown.length ? `no column ${unknown.join(", ")}` : "a column is named twice"}`,
      {
        argument: "columns",
      },
    );
  }
  const sorted = new Set(terms.map((t) => t.label));
  return { read: columns.filter((c) => shown.has(c.name) || sorted.has(c.name)), shown };
}

function recordSelect(columns: readonly Column[], transport = true): Sql {
  const value = (c: Column) => (transport ? transportExpr(c, sql`${ident(c.name)}`) : sql`${ident(c.name)}`);
  return join([sql`_key`, ...columns.map((c, i) => sql`${value(c)} AS ${ident(`_c${i}`)}`)]);
}

function toRecord(columns: readonly Column[], row: RawRow): RecordRow {
  return {
    key: String(row._key),
    values: Object.fromEntries(columns.map((c, i) => [c.name, fromTransport(c, row[`_c${i}`])])),
  };
}

function sortValues(terms: readonly SortTerm[], record: RecordRow): unknown[] {
  return terms.map((t) => (t.label === "_key" ? record.key : record.values[t.label]));
}

function groupName(term: SortTerm): string {
  return term.label.split(":")[0]!;
}

function groupTerms(columns: readonly Column[], groupBy: GroupByInput[] | null | undefined): SortTerm[] {
  const invalid = (problem: string) => badInput(`Invalid groupBy: ${problem}`, { argument: "groupBy" });
  const entries = groupBy ?? [];
  if (!Array.isArray(entries)) throw invalid("must be a list");
  if (entries.length > AGGREGATE_LIMITS.maxGroupBy)
    throw invalid(`at most ${AGGREGATE_LIMITS.maxGroupBy} columns`);
  const seen = new Set<string>();
  return entries.map((entry): SortTerm => {
    const column = columns.find((c) => c.name === entry?.column);
    if (!column) throw invalid(`unknown column ${JSON.stringify(entry?.column)}`);
    if (seen.has(column.name)) throw invalid(`column "${column.name}" appears twice`);
    seen.add(column.name);
    const base = { expr: sql`${ident(column.name)}`, nullable: column.nullable, direction: "ASC" as const };
    const bucket = entry.bucket ?? null;
    if (bucket === null) return { ...base, label: column.name, type: column };
    if (!TIME_BUCKETS.includes(bucket)) throw invalid(`unknown bucket ${JSON.stringify(bucket)}`);
    if (column.type !== "DATE" && column.type !== "DATETIME") {
      throw invalid(`bucket ${bucket} needs a DATE or DATETIME column; "${column.name}" is ${column.type}`);
    }
    if ((bucket === "HOUR" || bucket === "MINUTE") && column.type === "DATE") {
      throw invalid(`bucket ${bucket} needs a DATETIME column; "${column.name}" is a DATE`);
    }
    return { ...base, label: `${column.name}:${bucket}`, ...bucketOf(bucket, column, base.expr) };
  });
}

function compileMetrics(columns: readonly Column[], inputs: MetricInput[]): CompiledMetric[] {
  const invalid = (problem: string) => badInput(`Invalid metrics: ${problem}`, { argument: "metrics" });
  if (!Array.isArray(inputs) || inputs.length === 0) throw invalid("at least one metric is needed");
  if (inputs.length > AGGREGATE_LIMITS.maxMetrics)
    throw invalid(`at most ${AGGREGATE_LIMITS.maxMetrics} metrics`);
  const aliases = new Set<string>();
  return inputs.map((input) => {
    const metric = compileMetric(columns, input, invalid);
    if (!ALIAS.test(metric.alias)) throw invalid(`alias ${JSON.stringify(metric.alias)} must match ${ALIAS}`);
    if (aliases.has(metric.alias)) {
      throw invalid(`two metrics are called "${metric.alias}"; give one of them another alias`);
    }
    aliases.add(metric.alias);
    return metric;
  });
}

function compileMetric(
  columns: readonly Column[],
  input: MetricInput,
  invalid: (problem: string) => Error,
): CompiledMetric {
  const fn = input?.fn;
  const name = input?.column ?? null;
  const column = name === null ? null : columns.find((c) => c.name === name);
  if (column === undefined) throw invalid(`unknown column ${JSON.stringify(name)}`);
  if (column === null && fn !== "COUNT") throw invalid(`${String(fn)} needs a column`);
  if (fn !== "QUANTILE" && input.q != null) throw invalid("q is for QUANTILE only");
  const col = column === null ? null : sql`${ident(column.name)}`;
  const label = column === null ? "" : `_${column.name}`;
  const numeric = () => {
    if (!isNumeric(column!.type))
      throw invalid(`${fn} needs a numeric column; "${column!.name}" is ${column!.type}`);
    return col!;
  };
  const named = (defaultAlias: string, expr: Sql, decode: (raw: unknown) => unknown): CompiledMetric => ({
    alias: input.alias ?? defaultAlias,
    expr,
    decode,
  });
  switch (fn) {
    case "COUNT":
      return named(`count${label}`, col === null ? sql`count()` : sql`count(${col})`, asCount);
    case "UNIQ":
      // uniq is approximate beyond ~65,000 distinct values per group (ClickHouse's adaptive sampling).
      return named(`uniq${label}`, sql`ifNull(uniq(${col}), 0)`, asCount);
    case "SUM": {
      const x = numeric();
      if (column!.type === "FLOAT64") return named(`sum${label}`, sql`sum(${x})`, toNumberOrNull);
      if (column!.type === "DECIMAL" && (column!.precision ?? 18) > 18) {
        return named(`sum${label}`, decimal128Sum(x), (raw) => fromSplitSum(raw, column!.scale ?? 0));
      }
      // As Decimal(38, 0): an Int64 sum wraps around on overflow, a Decimal128 one needs 10^19 rows.
      const wide = column!.type === "DECIMAL" ? sql`sum(${x})` : sql`sum(toDecimal128(${x}, 0))`;
      const type: ValueType = { type: "DECIMAL", precision: 38, scale: column!.scale ?? 0 };
      return named(`sum${label}`, transportExpr(type, wide), (raw) => fromTransport(type, raw));
    }
    case "AVG": {
      // Through Float64: avg of Int64 accumulates in Int64 and can wrap; avg of a Decimal is a float anyway.
      const x =
        column!.type === "INT32" || column!.type === "FLOAT64" ? numeric() : sql`toFloat64(${numeric()})`;
      return named(`avg${label}`, sql`avg(${x})`, toNumberOrNull);
    }
    case "MIN":
    case "MAX": {
      const expr = fn === "MIN" ? sql`min(${col})` : sql`max(${col})`;
      return named(`${fn.toLowerCase()}${label}`, transportExpr(column!, expr), (raw) =>
        fromTransport(column!, raw),
      );
    }
    case "QUANTILE": {
      const x = numeric();
      const q = input.q;
      if (typeof q !== "number" || !(q > 0 && q < 1))
        throw invalid("QUANTILE needs q strictly between 0 and 1");
      // quantile() samples (reservoir of 8,192 values): exact below that many values per group.
      return named(
        `quantile${label}_${String(q).replace(/[^0-9]/g, "_")}`,
        sql`quantile(${q})(toFloat64(${x}))`,
        toNumberOrNull,
      );
    }
    default:
      throw invalid(`unknown function ${JSON.stringify(fn)}`);
  }
}

// Decimal128 sums wrap around silently past 10^38 (a few values near the column's maximum do it).
// Summing the two 64-bit halves of each value separately cannot overflow in practice; the
// halves' sums are joined exactly in JS.
function decimal128Sum(x: Sql): Sql {
  const bytes = sql`reinterpretAsString(${x})`;
  const wide: ValueType = { type: "DECIMAL", precision: 38, scale: 0 };
  const high = sql`sum(toDecimal128(reinterpretAsInt64(substring(${bytes}, 9, 8)), 0))`;
  const low = sql`sum(toDecimal128(reinterpretAsUInt64(substring(${bytes}, 1, 8)), 0))`;
  return sql`concat(${transportExpr(wide, high)}, '|', ${transportExpr(wide, low)})`;
}

function fromSplitSum(raw: unknown, scale: number): string | null {
  if (raw === null || raw === undefined) return null;
  const wide: ValueType = { type: "DECIMAL", precision: 38, scale: 0 };
  const [high, low] = String(raw)
    .split("|")
    .map((part) => BigInt(fromTransport(wide, part) as string));
  return formatUnscaled((high! << 64n) + low!, scale);
}

// Float64 aggregates over no values are NaN, which ClickHouse writes as JSON null.
function toNumberOrNull(raw: unknown): number | null {
  return raw === null || raw === undefined ? null : Number(raw);
}

export type { RecordFilter, RecordOrder };
