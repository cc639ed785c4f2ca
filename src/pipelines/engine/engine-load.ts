// The engine load: a local CSV file parsed by ClickHouse's own CSV reader as text columns (on a
// server into a raw table the worker streams the file into; the embedded engine reads the file
// where it lies), then moved into the dataset's table by one INSERT … SELECT that applies the pipeline's
// steps and final check as SQL (plan.ts). Rows the SQL cannot prove go through the Node steps, which
// give the reasons of every rejected row, so results, counters and quarantine reasons are those of
// the Node path. Whenever the engine might read the file differently (csv-shape.ts), meets more rows
// than it should hand to Node, or would have to weigh a Node row against an engine row for the same
// key, it gives up before writing anything and the run takes the Node path from the start.
import { createReadStream } from "node:fs";
import { open } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { canonicalKey } from "../../catalog/columns.js";
import { tableRef } from "../../catalog/dataset-table.js";
import type { ClickHouse } from "../../db/clickhouse.js";
import type { ClickHouseSettings } from "@clickhouse/client";
import { ident, inList, join, sql, type Identifier, type Sql } from "../../db/sql.js";
import { AppError } from "../../errors.js";
import { relayCollection } from "../../observability/relay-collection.js";
import { nextRowVersion, RowStream, type DatasetRef } from "../../records/records.writer.js";
import { headerNames, readCsv } from "../../sources/formats/csv.js";
import type { LocalCsv } from "../../sources/connectors/types.js";
import { emptyKeyReason, type LoadSettings } from "../load-rules.js";
import { quarantine, type RejectedRow } from "../run-tables.js";
import type { CompiledPipeline } from "../steps/compile.js";
import { CsvShapeCheck, joinShapes, type CsvShape } from "./csv-shape.js";
import { planEngineLoad, rawColumn, type EnginePlan } from "./plan.js";

/**
 * Where the file's rows are read from as text columns c1…cN: the raw table ClickHouse parsed the
 * file into (a server), or the file itself through `file()` (the embedded engine, which reads it
 * where it lies), with the settings every read needs.
 */
interface RawRows {
  from: Sql;
  /** The same rows as parts a statement each may read at once (a server's raw tables). */
  parts: Sql[];
  /** The rows with `_n`, their number in the file from 0 (read under `inFileOrder`). */
  numbered: Sql;
  settings: ClickHouseSettings;
  /** Whether counting its rows is cheap (a table), rather than parsing the file again. */
  countable: boolean;
  /** The settings of a read that numbers the rows in file order: one thread, parsing in order. */
  inFileOrder: ClickHouseSettings;
  /** The settings of an INSERT … SELECT of the rows in no particular order. */
  writing: ClickHouseSettings;
}

/**
 * The embedded engine reads the file as one stream, which one thread would sort and write: with
 * a writing thread per core and blocks of a quarter of the default, the sorting by `_key` and the
 * writing of a 1,000,000-row file run on every core (as a few parts instead of one). On two cores
 * the file is then parsed on one thread: parsing in parallel took those cores from the sort and
 * cost the statement a fifth more time (bench/README, "The engine load, session 12").
 */
const EMBEDDED_WRITING: ClickHouseSettings = {
  max_insert_threads: String(availableParallelism()),
  min_insert_block_size_rows: String(1 << 18),
  ...(availableParallelism() <= 2 ? { input_format_parallel_parsing: 0 } : {}),
};

/** Rows the SQL cannot prove that the Node steps take; beyond it the run takes the Node path. */
export const MAX_NODE_ROWS = 50_000;
/**
 * Bytes read from the file at a time. Each read is a new buffer that lives until a collection;
 * at 1 MiB a 3,000,000-row file's worker peaked 10-14 MiB higher than at 256 KiB, no faster.
 */
const READ_CHUNK = 1 << 18;

export interface EngineLoadInput {
  clickhouse: ClickHouse;
  database: string;
  runId: string;
  datasetId: string;
  /** Where the rows go: the run's staging table (FULL_REFRESH) or the live one. */
  target: DatasetRef;
  /**
   * The raw tables a server parses the file into (run-tables.ts rawTableNames): a large file is
   * parsed as parts at once, one table each.
   */
  rawTables: readonly string[];
  /**
   * From this size a server parses the file as two parts at once: 18.16 parses one statement's
   * input and writes one INSERT … SELECT on one thread, so one part alone leaves a core idle.
   */
  partsFromBytes: number;
  /** The target is a table of this run's own, empty before the load (FULL_REFRESH). */
  freshTarget: boolean;
  steps: unknown;
  settings: LoadSettings;
  newFieldPolicy: "IGNORE" | "ADD_COLUMN" | "FAIL";
  compiled: CompiledPipeline;
  file: LocalCsv;
  signal: AbortSignal;
  /** Bytes of the file parsed so far (from 0 again when a split file is parsed again whole). */
  onBytes: (bytes: number) => void;
}

export interface EngineLoadCounters {
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  rowsDuplicate: number;
  bytesRead: number;
}

export type EngineLoadResult =
  | {
      loaded: true;
      counters: EngineLoadCounters;
      newFields: string[];
      /** Rows the SQL could not prove, taken through the Node steps. */
      nodeRows: number;
      /**
       * Milliseconds per step: plan, parse, insert, count, node; on the embedded engine the
       * shape check (`check`) runs alongside insert and count.
       */
      phases: Record<string, number>;
    }
  | { loaded: false; reason: string };

const notLoaded = (reason: string): EngineLoadResult => ({ loaded: false, reason });

/** Milliseconds each step of a load took, for the run's log. */
class Phases {
  readonly ms: Record<string, number> = {};
  private last = performance.now();

  done(name: string): void {
    const now = performance.now();
    this.ms[name] = (this.ms[name] ?? 0) + Math.round(now - this.last);
    this.last = now;
  }

  /** A step that ran alongside the others. */
  add(name: string, ms: number): void {
    this.ms[name] = (this.ms[name] ?? 0) + Math.round(ms);
  }
}

/** Loads the file in the engine, or says why the Node path must load it (nothing written then). */
export async function engineLoad(input: EngineLoadInput): Promise<EngineLoadResult> {
  const phase = new Phases();
  const { clickhouse, file } = input;
  if (clickhouse.cluster !== undefined) return notLoaded("the dataset is on a cluster");
  if (
    file.delimiter === " " ||
    file.delimiter === "\t" ||
    file.delimiter === '"' ||
    file.delimiter.charCodeAt(0) > 127
  )
    return notLoaded(`the delimiter ${JSON.stringify(file.delimiter)}`);
  const head = await readFirstRecord(file);
  if ("problem" in head) return notLoaded(head.problem);
  const names = file.header ? headerNames(head.fields) : head.fields.map((_, i) => `column${i + 1}`);
  const newFields = names.filter((name) => !input.compiled.uses(name)).sort();
  if (newFields.length && input.newFieldPolicy !== "IGNORE")
    return notLoaded(`new fields with the new-field policy ${input.newFieldPolicy}`);
  const plan = planEngineLoad({
    steps: input.steps,
    columns: input.target.columns,
    keyColumns: input.target.keyColumns,
    settings: input.settings,
    sourceFields: names,
  });
  if ("unsupported" in plan) return notLoaded(plan.unsupported);

  // Named after the run: a retried attempt drops what an interrupted one left.
  const tables = input.rawTables.map((name) => tableRef(input.database, name));
  const settings = await csvSettings(clickhouse, file);
  const embedded = clickhouse.engine === "embedded";
  const format = file.header ? "CSVWithNames" : "CSV";
  const structure = names.map((_, i) => `${rawColumn(i)} String`).join(", ");
  const version = nextRowVersion();
  const into = tableRef(input.database, input.target.tableName);
  const giveUp = async (reason: string) => {
    if (input.freshTarget) await clickhouse.command(sql`TRUNCATE TABLE ${into}`);
    return notLoaded(reason);
  };
  try {
    phase.done("plan");
    let shape: CsvShape | { problem: string };
    let counts: Counts;
    let writer: CleanRows;
    let raw: RawRows;
    if (embedded) {
      const from = sql`file(${file.path}, ${format}, ${structure})`;
      raw = {
        from,
        parts: [from],
        numbered: sql`(SELECT rowNumberInAllBlocks() AS _n, * FROM ${from})`,
        settings,
        countable: false,
        inFileOrder: { ...settings, max_threads: 1, input_format_parallel_parsing: 0 },
        writing: { ...settings, ...EMBEDDED_WRITING },
      };
      writer = new CleanRows(input, plan, raw, into, version);
      // The engine reads the file itself, so it loads (or counts) the rows while the worker
      // checks the bytes; a refused file's rows leave the run's own table again before anyone
      // sees them (a live table is written only after the check, in loadFromRaw).
      const checked = (async () => {
        const started = performance.now();
        const result = await checkShape(input);
        phase.add("check", performance.now() - started);
        return result;
      })();
      const [check, pass] = await Promise.allSettled([checked, firstPass(input, plan, raw, writer, phase)]);
      if (check.status === "rejected") throw check.reason;
      shape = check.value;
      if ("problem" in shape) return await giveUp(shape.problem);
      if (pass.status === "rejected") throw pass.reason;
      counts = pass.value;
    } else {
      const parsed = await parseIntoRaw(input, tables, names.length, settings);
      phase.done("parse");
      if ("problem" in parsed) return notLoaded(parsed.problem);
      shape = parsed.shape;
      raw = rawTables(parsed.parts);
      const [read] = await clickhouse.query<{ n: string[] }>(
        sql`SELECT [${join(parsed.parts.map((p) => sql`toString((SELECT count() FROM ${p.table}))`))}] AS n`,
      );
      const differs = parsed.parts.findIndex((p, i) => Number(read!.n[i]) !== p.records);
      if (differs !== -1)
        return notLoaded(
          `ClickHouse read ${read!.n[differs]} records where the file has ${parsed.parts[differs]!.records}`,
        );
      writer = new CleanRows(input, plan, raw, into, version);
      counts = await firstPass(input, plan, raw, writer, phase);
    }
    const records = shape.records - (file.header ? 1 : 0);
    if (records === 0) return await giveUp("the file has no records");
    input.signal.throwIfAborted();
    return await loadFromRaw(
      input,
      plan,
      raw,
      names,
      shape,
      records,
      counts,
      writer,
      newFields,
      phase,
      giveUp,
    );
  } finally {
    if (!embedded) await dropRawTables(clickhouse, tables);
  }
}

async function dropRawTables(clickhouse: ClickHouse, tables: readonly Identifier[]): Promise<void> {
  for (const table of tables)
    await clickhouse.command(sql`DROP TABLE IF EXISTS ${table}`).catch(() => undefined);
}

/** A server's raw tables as rows to read: each part's rows follow the parts before it in the file. */
function rawTables(parts: readonly RawPart[]): RawRows {
  const union = (select: (part: RawPart, first: number) => Sql) => {
    let first = 0;
    const selects = parts.map((part) => {
      const each = select(part, first);
      first += part.records;
      return each;
    });
    return join(selects, " UNION ALL ");
  };
  return {
    from:
      parts.length === 1 ? sql`${parts[0]!.table}` : sql`(${union((p) => sql`SELECT * FROM ${p.table}`)})`,
    parts: parts.map((p) => sql`${p.table}`),
    numbered: sql`(${union((p, first) => sql`SELECT rowNumberInAllBlocks() + ${first} AS _n, * FROM ${p.table}`)})`,
    settings: {},
    countable: true,
    inFileOrder: { max_threads: 1 },
    writing: {},
  };
}

/** The settings under which ClickHouse's CSV reader reads a file as ours does (csv-shape.ts). */
async function csvSettings(clickhouse: ClickHouse, file: LocalCsv): Promise<ClickHouseSettings> {
  const settings: ClickHouseSettings = { format_csv_allow_single_quotes: 0 };
  if (file.delimiter !== ",") settings.format_csv_delimiter = file.delimiter;
  if ((await clickhouse.version()).major >= 20) {
    // Current servers match header names and trim unquoted fields unless told not to.
    Object.assign(settings, { input_format_with_names_use_header: 0, input_format_csv_trim_whitespaces: 0 });
  }
  return settings;
}

/** A range of the file's bytes: from `start` up to, not including, `end` (or to the file's end). */
interface ByteRange {
  start: number;
  end?: number;
}

/**
 * Reads a range of the file through a shape check, handing each chunk on; a problem stops the
 * reading. `read` is told of every chunk's bytes (parts read at once report to one total).
 */
async function scanFile(
  input: EngineLoadInput,
  check: CsvShapeCheck,
  each: (chunk: Buffer) => Promise<void>,
  range: ByteRange,
  read: (bytes: number) => void,
  signal: AbortSignal,
): Promise<void> {
  const { start, end } = range;
  if (end !== undefined && end <= start) return;
  const chunks = createReadStream(input.file.path, {
    highWaterMark: READ_CHUNK,
    signal,
    start,
    ...(end !== undefined ? { end: end - 1 } : {}),
  });
  const relayed = relayCollection();
  for await (const chunk of chunks as AsyncIterable<Buffer>) {
    check.push(chunk);
    if (check.problem) return;
    read(chunk.length);
    relayed(chunk.length);
    await each(chunk);
  }
}

/** Adds up the bytes read, for the run's progress (parts read at once add to one total). */
function progressOf(input: EngineLoadInput): (bytes: number) => void {
  let total = 0;
  return (bytes) => input.onBytes((total += bytes));
}

/**
 * The shape check alone, over the file (the embedded engine reads the file itself), read into one
 * buffer over and over: the check keeps nothing of a chunk, and a new buffer per read left the
 * dead ones for V8 to find in collections of the whole heap.
 */
async function checkShape(input: EngineLoadInput): Promise<CsvShape | { problem: string }> {
  const check = new CsvShapeCheck(input.file.delimiter.charCodeAt(0));
  const read = progressOf(input);
  const file = await open(input.file.path, "r");
  try {
    const buffer = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      input.signal.throwIfAborted();
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      check.push(buffer.subarray(0, bytesRead));
      if (check.problem) break;
      read(bytesRead);
    }
  } finally {
    await file.close();
  }
  return check.problem ? { problem: check.problem } : check.end();
}

/** The first record's fields, read with the shape check so the rest of the file is not read. */
async function readFirstRecord(file: LocalCsv): Promise<{ fields: string[] } | { problem: string }> {
  const check = new CsvShapeCheck(file.delimiter.charCodeAt(0));
  const stream = createReadStream(file.path, { highWaterMark: 64 * 1024 });
  try {
    for await (const chunk of stream) {
      check.push(chunk as Buffer);
      if (check.problem) return { problem: check.problem };
      if (check.firstRecord) break;
    }
  } finally {
    stream.destroy();
  }
  if (!check.firstRecord) {
    const shape = check.end(); // a file of one record without a line end
    if ("problem" in shape) return shape;
  }
  const first = check.firstRecord;
  if (!first) return { problem: "the file is empty" };
  return { fields: await recordFields(first, file.delimiter) };
}

/** One record's fields as our CSV reader reads them (the Node path's header names come so too). */
export async function recordFields(record: Buffer, delimiter: string): Promise<string[]> {
  const bytes = (async function* () {
    yield record;
  })();
  for await (const row of readCsv(bytes, { delimiter, header: false })) {
    if (row.ok) return Object.values(row.record) as string[];
  }
  return [];
}

/** A raw table ClickHouse parsed part of the file into, and the records the shape check saw there. */
interface RawPart {
  table: Identifier;
  records: number;
}

type Parsed = { shape: CsvShape; parts: RawPart[] } | { problem: string };

/**
 * ClickHouse parses the file into raw tables while the shape check reads the same bytes: a large
 * file as two parts at once, split at a line end past its middle. Whether that line end ends a
 * record is known only once the first part is read (it may lie inside a quoted field); if it does
 * not, the file is parsed again as one part.
 */
async function parseIntoRaw(
  input: EngineLoadInput,
  tables: readonly Identifier[],
  fields: number,
  settings: ClickHouseSettings,
): Promise<Parsed> {
  const { clickhouse, file } = input;
  const create = async (table: Identifier) => {
    await clickhouse.command(sql`DROP TABLE IF EXISTS ${table}`);
    const columns = Array.from({ length: fields }, (_, i) => sql`${ident(rawColumn(i))} String`);
    await clickhouse.command(sql`CREATE TABLE ${table} (${join(columns)}) ENGINE = Memory`);
  };
  const split = tables.length > 1 && file.size >= input.partsFromBytes ? await splitPoint(file) : null;
  if (split !== null) {
    for (const table of tables.slice(0, 2)) await create(table);
    const parsed = await parseInTwo(input, tables, settings, split);
    if (parsed !== "split inside a record") return parsed;
  }
  await create(tables[0]!);
  const read = progressOf(input);
  const whole = await parsePart(input, tables[0]!, settings, { start: 0 }, read, input.signal);
  if (!("records" in whole)) return wholeFile(whole);
  return { shape: whole, parts: [{ table: tables[0]!, records: whole.records - (file.header ? 1 : 0) }] };
}

/**
 * Where a file may split: just past the first line end after its middle. Not before the bytes of
 * a byte-order mark: current servers skip one at the start of an INSERT's data.
 */
async function splitPoint(file: LocalCsv): Promise<number | null> {
  const middle = Math.floor(file.size / 2);
  const handle = await open(file.path);
  try {
    const window = Buffer.alloc(64 * 1024);
    const { bytesRead } = await handle.read(window, 0, window.length, middle);
    const lineEnd = window.subarray(0, bytesRead).indexOf(0x0a);
    if (lineEnd === -1 || middle + lineEnd + 1 >= file.size) return null;
    const next = window.subarray(lineEnd + 1, lineEnd + 4);
    if (next.length < 3 && bytesRead === window.length) return null; // not known here
    if (next.equals(BYTE_ORDER_MARK)) return null;
    return middle + lineEnd + 1;
  } finally {
    await handle.close();
  }
}

/**
 * Both halves at once, each into its own table. A problem in the first half is the file's (it
 * stops the second); one in the second is the file's only if the first half ended a record at
 * the split, so the first is always read to its end.
 */
async function parseInTwo(
  input: EngineLoadInput,
  tables: readonly Identifier[],
  settings: ClickHouseSettings,
  split: number,
): Promise<Parsed | "split inside a record"> {
  const { file } = input;
  const stop = new AbortController();
  const signal = AbortSignal.any([input.signal, stop.signal]);
  const read = progressOf(input);
  const failed = (error: unknown): never => {
    stop.abort();
    throw error;
  };
  const head = parsePart(input, tables[0]!, settings, { start: 0, end: split }, read, signal).then(
    (shape) => {
      if (!("records" in shape)) stop.abort();
      return shape;
    },
    failed,
  );
  const tail = parsePart(input, tables[1]!, settings, { start: split }, read, signal).catch(failed);
  const [first, second] = await Promise.allSettled([head, tail]);
  input.signal.throwIfAborted();
  if (first.status === "rejected") throw first.reason;
  if ("problem" in first.value) return first.value;
  if ("cut" in first.value) return "split inside a record";
  if (second.status === "rejected") throw second.reason;
  if (!("records" in second.value)) return wholeFile(second.value);
  const shape = joinShapes(first.value, second.value);
  if ("problem" in shape) return shape;
  return {
    shape,
    parts: [
      { table: tables[0]!, records: first.value.records - (file.header ? 1 : 0) },
      { table: tables[1]!, records: second.value.records },
    ],
  };
}

/**
 * ClickHouse parses a range of the file into a raw table while the shape check reads the same
 * bytes. `cut`: the range does not end where a record does (never so at the file's end).
 */
async function parsePart(
  input: EngineLoadInput,
  table: Identifier,
  settings: ClickHouseSettings,
  range: ByteRange,
  read: (bytes: number) => void,
  signal: AbortSignal,
): Promise<CsvShape | { problem: string } | { cut: true }> {
  const { clickhouse, file } = input;
  const check = new CsvShapeCheck(file.delimiter.charCodeAt(0), range.start);
  const last = range.end === undefined;
  // The file's first record is in the first part; only there is it a header.
  const format = file.header && range.start === 0 ? "CSVWithNames" : "CSV";
  try {
    const insert = clickhouse.insertStream(
      sql`INSERT INTO ${table} FORMAT ${formatName(format)}`,
      signal,
      settings,
    );
    try {
      await scanFile(input, check, (chunk) => insert.write(chunk), range, read, signal);
    } catch (error) {
      insert.abort();
      throw error;
    }
    if (check.problem) {
      insert.abort();
      return { problem: check.problem };
    }
    if (!last && !check.atRecordStart) {
      insert.abort();
      return { cut: true };
    }
    const shape = check.end();
    // ClickHouse 18.16 fails on a last record without a line end when its last field is empty.
    if (!("problem" in shape) && !shape.terminated) await insert.write(shape.lineEnd ?? "\n");
    await insert.end();
    return shape;
  } catch (error) {
    if (signal.aborted) throw error;
    // ClickHouse could not parse what the check had not refused yet: the Node path will say why.
    if (check.problem) return { problem: check.problem };
    if (error instanceof AppError) throw error;
    const message = error instanceof Error ? error.message.split("\n")[0]!.slice(0, 300) : String(error);
    return { problem: `ClickHouse could not read the file (${message})` };
  }
}

const BYTE_ORDER_MARK = Buffer.from([0xef, 0xbb, 0xbf]);

/** A part that ends the file is never cut. */
const wholeFile = (part: { problem: string } | { cut: true }): { problem: string } =>
  "problem" in part ? part : { problem: "the file's last part was cut inside a record" };

const formatName = (format: "CSVWithNames" | "CSV") => (format === "CSV" ? sql`CSV` : sql`CSVWithNames`);

interface NodeRows {
  ok: Record<string, unknown>[];
  keys: string[];
  rejected: RejectedRow[];
}

/** What the first pass over the raw rows found; `total` is null where counting them means parsing the file. */
interface Counts {
  total: number | null;
  clean: number;
  distinct: number;
}

/**
 * The first pass over the raw rows. Into a table of this run's own (FULL_REFRESH) the proved rows
 * go at once and are counted there; if the run must take the Node path after all, the table is
 * emptied again. Otherwise they are only counted.
 */
async function firstPass(
  input: EngineLoadInput,
  plan: EnginePlan,
  raw: RawRows,
  writer: CleanRows,
  phase: Phases,
): Promise<Counts> {
  if (input.freshTarget) {
    await writer.insert(false);
    phase.done("insert");
    const counts = await countInserted(input, plan, raw, writer.into);
    phase.done("count");
    return counts;
  }
  const [row] = await input.clickhouse.query<{ total: string; clean: string; distinct: string }>(
    sql`SELECT toString(count()) AS total, toString(countIf(${plan.clean})) AS clean, toString(uniqExactIf(${plan.key}, ${plan.clean})) AS distinct FROM ${raw.from}`,
    raw.settings,
  );
  phase.done("count");
  return { total: Number(row!.total), clean: Number(row!.clean), distinct: Number(row!.distinct) };
}

async function loadFromRaw(
  input: EngineLoadInput,
  plan: EnginePlan,
  raw: RawRows,
  names: string[],
  shape: CsvShape,
  records: number,
  counts: Counts,
  writer: CleanRows,
  newFields: string[],
  phase: Phases,
  giveUp: (reason: string) => Promise<EngineLoadResult>,
): Promise<EngineLoadResult> {
  const { clickhouse, target, file } = input;
  const { clean, distinct } = counts;
  // A file's rows are not counted apart (that would parse it again): nodeRows checks that the
  // rows it gets back make up the difference.
  const total = counts.total ?? records;
  if (total !== records) return giveUp(`ClickHouse read ${total} records where the file has ${records}`);
  if (total - clean > MAX_NODE_ROWS)
    return giveUp(`${total - clean} rows need the Node steps (more than ${MAX_NODE_ROWS})`);
  const node = await nodeRows(input, plan, raw, names, total - clean);
  if ("problem" in node) return giveUp(node.problem);
  if (node.keys.length) {
    const [hit] = await clickhouse.query<{ n: string }>(
      sql`SELECT toString(count()) AS n FROM ${raw.from} WHERE ${plan.clean} AND ${plan.key} IN ${inList(node.keys)}`,
      {
        ...raw.settings,
        max_query_size: String(1024 * 1024 + node.keys.reduce((n, k) => n + k.length * 2 + 4, 0)),
      },
    );
    if (Number(hit!.n) > 0) return giveUp("rows for the Node steps share keys with rows the engine loads");
  }
  input.signal.throwIfAborted();
  phase.done("node");

  if (input.freshTarget && clean !== distinct) {
    await clickhouse.command(sql`TRUNCATE TABLE ${writer.into}`);
    await writer.insert(true);
  } else if (!input.freshTarget) {
    await writer.insert(clean !== distinct);
  }
  phase.done("insert");
  if (node.ok.length) {
    const rows = new RowStream(clickhouse, input.database, target, {
      runId: input.runId,
      rowsPerInsert: node.ok.length,
      signal: input.signal,
      represented: true,
    });
    for (const row of node.ok) await rows.write(row);
    await rows.finish();
  }
  if (node.rejected.length) await quarantine(clickhouse, input.database, input.datasetId, node.rejected);
  const headerBytes = file.header ? shape.first!.length : 0;
  return {
    loaded: true,
    nodeRows: total - clean,
    newFields,
    phases: phase.ms,
    counters: {
      rowsRead: total,
      rowsWritten: distinct + node.ok.length,
      rowsRejected: node.rejected.length,
      rowsDuplicate: clean - distinct,
      bytesRead: shape.recordBytes - headerBytes,
    },
  };
}

/**
 * The rows of the file (`total`), those the INSERT … SELECT wrote into the run's own table
 * (`clean`) and their distinct keys. The keys are counted with FINAL, which collapses each key's
 * rows as it reads the table sorted by `_key` (a tenth of the time of uniqExact over the keys).
 * The rows written are the parts' rows as long as no part comes from a merge yet: a merge of a
 * ReplacingMergeTree drops a key's older rows, so after one the rows are counted in the file.
 */
async function countInserted(
  input: EngineLoadInput,
  plan: EnginePlan,
  raw: RawRows,
  into: Identifier,
): Promise<Counts> {
  const { clickhouse } = input;
  // A table's rows are counted too (a sanity check of the parse).
  const total = raw.countable ? sql`toString((SELECT count() FROM ${raw.from}))` : sql`''`;
  const [row] = await clickhouse.query<{ total: string; rows: string; level: string; distinct: string }>(
    sql`SELECT ${total} AS total, toString(sum(rows)) AS rows, toString(max(level)) AS level,
      toString((SELECT count() FROM ${into} FINAL)) AS distinct
      FROM system.parts WHERE database = ${input.database} AND table = ${input.target.tableName} AND active`,
  );
  let clean = Number(row!.rows);
  if (Number(row!.level) > 0) {
    const [again] = await clickhouse.query<{ n: string }>(
      sql`SELECT toString(countIf(${plan.clean})) AS n FROM ${raw.from}`,
      raw.settings,
    );
    clean = Number(again!.n);
  }
  return { total: raw.countable ? Number(row!.total) : null, clean, distinct: Number(row!.distinct) };
}

/** The INSERT … SELECT of the rows the SQL proves, from the raw table into the dataset's. */
class CleanRows {
  constructor(
    private readonly input: EngineLoadInput,
    private readonly plan: EnginePlan,
    private readonly raw: RawRows,
    readonly into: Identifier,
    private readonly version: bigint,
  ) {}

  /** With `onePerKey`, only the last (LAST_WINS) or first (FIRST_WINS) row of each key in file order. */
  async insert(onePerKey: boolean): Promise<void> {
    const { input, plan, raw, into } = this;
    const names = [
      ...input.target.columns.map((c) => c.name),
      "_key",
      "_version",
      "_run_id",
      "_ingested_at",
      "_deleted",
    ];
    const columns = join(names.map((n) => sql`${ident(n)}`));
    const system = sql`${this.version}, ${input.runId}, toDateTime(${Math.floor(Date.now() / 1000)}), 0`;
    if (!onePerKey) {
      const values = join(plan.values.map((v) => v.expr));
      // Current servers collapse the rows of one key already while inserting; the rows are counted
      // afterwards, so every row must arrive (18.16 has no such setting and does not collapse).
      const { major } = await input.clickhouse.version();
      const settings: ClickHouseSettings =
        major >= 21 ? { ...raw.writing, optimize_on_insert: 0 } : raw.writing;
      // One statement per part, at once: a statement writes on one thread.
      const inserts = await Promise.allSettled(
        raw.parts.map((part) =>
          input.clickhouse.command(
            sql`INSERT INTO ${into} (${columns}) SELECT ${values}, ${plan.key}, ${system} FROM ${part} WHERE ${plan.clean}`,
            settings,
          ),
        ),
      );
      const failed = inserts.find((r) => r.status === "rejected");
      if (failed) throw failed.reason;
      return;
    }
    // A tuple of the values: argMax would skip a NULL value instead of choosing it. Numbering the
    // rows in file order needs one thread.
    const pick = input.settings.duplicateKeys === "FIRST_WINS" ? sql`argMin` : sql`argMax`;
    const aliased = join(plan.values.map((v, i) => sql`${v.expr} AS ${ident(`_v${i}`)}`));
    const tuple = join([...plan.values.map((_, i) => sql`${ident(`_v${i}`)}`), sql`0`]);
    const picked = join(plan.values.map((_, i) => sql`tupleElement(_w, ${i + 1})`));
    await input.clickhouse.command(
      sql`INSERT INTO ${into} (${columns}) SELECT ${picked}, _k, ${system} FROM (SELECT ${pick}(tuple(${tuple}), _n) AS _w, _k FROM (SELECT _n, ${plan.key} AS _k, ${aliased} FROM ${raw.numbered} WHERE ${plan.clean}) GROUP BY _k)`,
      raw.inFileOrder,
    );
  }
}

/** The rows the SQL could not prove, through the Node steps in file order. */
async function nodeRows(
  input: EngineLoadInput,
  plan: EnginePlan,
  raw: RawRows,
  names: string[],
  count: number,
): Promise<NodeRows | { problem: string }> {
  const result: NodeRows = { ok: [], keys: [], rejected: [] };
  if (count === 0) return result;
  const fields = join(names.map((_, i) => sql`${ident(rawColumn(i))}`));
  const rows = await input.clickhouse.query<Record<string, string> & { _n: string }>(
    sql`SELECT toString(_n + 1) AS _n, ${fields} FROM ${raw.numbered} WHERE NOT ${plan.clean} ORDER BY _n`,
    raw.inFileOrder,
  );
  if (rows.length !== count)
    return { problem: `ClickHouse read ${rows.length} rows the SQL cannot prove, not ${count}` };
  const seen = new Set<string>();
  const keyColumns = input.target.keyColumns;
  for (const row of rows) {
    const rowNumber = Number(row._n);
    const record: Record<string, unknown> = {};
    names.forEach((name, i) => (record[name] = row[rawColumn(i)]));
    const reject = (reasons: string[]) =>
      result.rejected.push({
        runId: input.runId,
        origin: input.file.origin,
        rowNumber,
        raw: JSON.stringify(record),
        reasons,
      });
    const pending = input.compiled.processRecord(rowNumber, record);
    const step = pending instanceof Promise ? await pending : pending;
    if (!step) return { problem: "a filter dropped a row" }; // plans have no filters
    if (!step.ok) {
      reject(step.reasons);
      continue;
    }
    const empty = emptyKeyReason(input.settings, keyColumns, step.row);
    if (empty) {
      reject([empty]);
      continue;
    }
    const key = canonicalKey(keyColumns, step.row);
    if (seen.has(key)) return { problem: "rows for the Node steps share a key" };
    seen.add(key);
    result.keys.push(key);
    result.ok.push(step.row);
  }
  return result;
}
