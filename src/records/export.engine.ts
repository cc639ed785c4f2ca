// Exports as ClickHouse writes them: the query formats every value the way Datahus represents it
// (columns.ts: 64-bit integers and decimals as exact text, dates in ISO form, the epoch as 1970 on
// 18.16 too) and ClickHouse's own output goes to the client byte for byte, so Node neither parses
// nor serializes rows. Pure: the SQL for one export and the count of rows in the bytes sent.
//
// What the engine cannot write the Datahus way stays on the Node path (export.ts), chosen per
// dataset and format by `engineExport`: NDJSON with BOOLEAN columns (18.16 has no JSON boolean),
// and decimals wider than 18 digits on 18.16 (it cannot print them as text exactly).
import type { Column } from "../catalog/columns.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
import { epochIsoText } from "./calendar.js";
import { decimalShape } from "./values.js";

export const EXPORT_FORMATS = ["ndjson", "csv", "tsv", "parquet"] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
  tsv: "text/tab-separated-values; charset=utf-8; header=present",
  parquet: "application/vnd.apache.parquet",
};

/** What the server can do, probed once (ClickHouse.version()). */
export interface EngineAbilities {
  major: number;
  parquet: boolean;
  /**
   * Whether the server reads a FINAL in one stream, so that an export's statement runs on one core
   * however many the server has (18.16; 26.7 reads it in parallel). Such a server gets the export
   * in key ranges it reads side by side (RecordsReader.exportStatement).
   */
  finalInOneStream: boolean;
}

export function engineAbilities(version: string): EngineAbilities {
  const major = Number(version.split(".")[0]);
  return { major, parquet: major >= 20, finalInOneStream: major < 20 };
}

/**
 * The statement (with its FORMAT) that makes ClickHouse write the export, or null when this
 * dataset and format need the Node path. `ranges` are queries (keys and filter, in no order) for
 * rows of disjoint key ranges, whose columns are `_key` and `_c0`, `_c1`, … in schema order; the
 * statement sorts their rows by key and keeps the first `limit` (all when null).
 */
export function engineExport(
  format: ExportFormat,
  columns: readonly Column[],
  ranges: readonly Sql[],
  limit: number | null,
  engine: EngineAbilities,
): Sql | null {
  if (!columns.every((c) => decimalText(c, engine) !== null)) return null;
  const sorted = sql`ORDER BY _key${limit === null ? sql.empty : sql` LIMIT ${limit}`}`;
  // Where the sort goes, as measured on 18.16 (bench/README, "Export, session 12"): after the
  // values are worked out for CSV, which then sorts one column of text instead of the stored ones,
  // and for several ranges, whose values are then worked out side by side; before, for one range
  // of the other formats, whose many columns of text sort slower than the stored values.
  const sortLast = format === "csv" || ranges.length > 1;
  const rows = join(ranges, " UNION ALL ");
  const { values, from } = withEpochText(columns, sortLast ? rows : sql`${rows} ${sorted}`);
  const last = sortLast ? sql` ${sorted}` : sql.empty;
  switch (format) {
    case "ndjson": {
      if (columns.some((c) => c.type === "BOOLEAN")) return null;
      const fields = values.map((value) => sql`${jsonValue(value, engine)} AS ${ident(value.column.name)}`);
      return sql`SELECT _key, ${join(fields)} FROM (${from})${last} FORMAT JSONEachRow`;
    }
    case "tsv":
    case "parquet": {
      if (format === "parquet" && !engine.parquet) return null;
      const fields = values.map((value) => sql`${textValue(value, engine)} AS ${ident(value.column.name)}`);
      // TSV without its header, which Datahus writes (tsvHeader): the embedded engine's streamed
      // output repeats a format's header in every chunk.
      const output = format === "tsv" ? sql`TabSeparated` : sql`Parquet`;
      return sql`SELECT _key, ${join(fields)} FROM (${from})${last} FORMAT ${output}`;
    }
    case "csv": {
      // One pre-built CSV line per row, written raw: the field rules are csvField's (export.ts),
      // which ClickHouse's own CSV does not follow (18.16 writes NULL as \N and quotes every string).
      const line = [
        csvField(sql`_key`),
        ...values.map((value) =>
          value.column.type === "STRING"
            ? csvField(textValue(value, engine))
            : csvPlainField(textValue(value, engine), value.column.nullable),
        ),
      ].reduce((text, field) => sql`${text}, ',', ${field}`);
      return sql`SELECT concat(${line}, '\r') FROM (${from})${last} FORMAT TabSeparatedRaw`;
    }
  }
}

interface ExportValue {
  column: Column;
  expr: Sql;
  /** An epoch-stored date's ISO text, computed in the row source. */
  iso?: Sql;
}

/**
 * Each column's value in `rows`, and the rows to select from: for dates stored as numbers since
 * 1970 (TimeStorage "epoch"), which no date type of 18.16 can print, `rows` with their ISO text
 * worked out (records/calendar.ts).
 */
function withEpochText(columns: readonly Column[], rows: Sql): { values: ExportValue[]; from: Sql } {
  const extra: Sql[] = [];
  const values = columns.map((column, i): ExportValue => {
    const expr = sql`${ident(`_c${i}`)}`;
    if (column.storage !== "epoch" || (column.type !== "DATE" && column.type !== "DATETIME"))
      return { column, expr };
    const text = epochIsoText(column.type, expr, `_c${i}`);
    extra.push(...text.columns);
    return { column, expr, iso: text.iso };
  });
  return { values, from: extra.length ? sql`SELECT *, ${join(extra)} FROM (${rows})` : rows };
}

/** A value in its JSON form: numbers stay numbers, the rest is text. */
function jsonValue({ column, expr, iso }: ExportValue, engine: EngineAbilities): Sql {
  return column.type === "INT32" || column.type === "FLOAT64"
    ? expr
    : textValue({ column, expr, iso }, engine);
}

/** A value as the text of its JSON representation (columns.ts); NULL stays NULL. */
function textValue({ column, expr, iso }: ExportValue, engine: EngineAbilities): Sql {
  if (iso) return iso;
  switch (column.type) {
    case "BOOLEAN":
      return sql`if(${expr} = 0, 'false', 'true')`;
    case "DATE":
      if (column.storage === "wide") return sql`toString(${expr})`;
      // 18.16 prints day 0 as 0000-00-00.
      return sql`if(toUInt16(${expr}) = 0, '1970-01-01', toString(${expr}))`;
    case "DATETIME":
      if (column.storage === "wide") return sql`formatDateTime(${expr}, '%Y-%m-%dT%H:%i:%SZ', 'UTC')`;
      return sql`if(toUInt32(${expr}) = 0, '1970-01-01T00:00:00Z', concat(replaceOne(toString(${expr}, 'UTC'), ' ', 'T'), 'Z'))`;
    case "DECIMAL":
      return decimalText(column, engine)!(expr);
    case "STRING":
      return expr;
    default:
      return sql`toString(${expr})`;
  }
}

/** How this server prints the column's decimals with every digit of the scale, or null. */
function decimalText(column: Column, engine: EngineAbilities): ((expr: Sql) => Sql) | null {
  if (column.type !== "DECIMAL") return (expr) => expr;
  const { precision, scale } = decimalShape(column);
  // 18.16 pads to the scale (2.20); current servers drop trailing zeros unless asked.
  if (engine.major >= 23) return (expr) => sql`toDecimalString(${expr}, ${scale})`;
  if (engine.major < 19 && precision <= 18) return (expr) => sql`toString(${expr})`;
  return null;
}

// RFC 4180 as export.ts csvField writes it: NULL is the empty field, the empty string `""`, a field
// holding a comma, quote, CR or LF is quoted with its quotes doubled.
/**
 * The text of a number, date or boolean: never empty and never holding a quote, comma or line
 * break, so only NULL needs a rule (the empty field). Testing every such value with a pattern cost
 * the CSV export a third of its speed.
 */
function csvPlainField(text: Sql, nullable: boolean): Sql {
  return nullable ? sql`ifNull(${text}, '')` : text;
}

/**
 * A text's field. 18.16 evaluates every branch of `multiIf` for every value, so each test counts:
 * four `position` searches (each one pass over the column's bytes) cost a third of the regular
 * expression `[",\r\n]` run value by value, and took a fifth off ClickHouse's CPU for the CSV
 * statement of 1,000,000 records like records.bench.ts's (bench/README, "Export, session 8").
 */
function csvField(text: Sql): Sql {
  const needsQuotes = sql`position(${text}, '"') + position(${text}, ',') + position(${text}, '\\r') + position(${text}, '\\n') > 0`;
  return sql`multiIf(isNull(${text}), '', ${text} = '', '""', ${needsQuotes}, concat('"', replaceAll(${text}, '"', '""'), '"'), ${text})`;
}

/**
 * Counts the rows in an export's bytes as they go out, so a cut-off export is charged for the
 * rows sent. A row counts once its line end is out; CSV line ends inside quoted fields do not count.
 * Parquet is only whole at its end (the footer): its rows count when the last byte is out.
 */
export class RowCounter {
  rows = 0;
  #quoted = false;

  constructor(private readonly format: ExportFormat) {}

  /**
   * Counts the rows that end in `chunk`, up to `most` in all, and returns how many of its bytes
   * hold them: the whole chunk, or up to the end of the `most`-th row when it ends there.
   */
  add(chunk: Uint8Array, most = Infinity): number {
    if (this.format === "parquet") return chunk.length;
    // Outside a quoted field, a chunk without a quote has one row per line feed, found natively; a
    // chunk with quotes is read byte by byte (a native search per quote costs more where they are
    // dense, as in text written by ClickHouse's own CSV). Per 1,000,000 rows of records.bench.ts's
    // CSV (70 MB, no quotes): 150-160 ms byte by byte, 42-47 ms by line feed.
    if (this.format !== "csv" || (!this.#quoted && chunk.indexOf(34) === -1)) {
      for (let at = chunk.indexOf(10); at !== -1; at = chunk.indexOf(10, at + 1))
        if (++this.rows >= most) return at + 1;
      return chunk.length;
    }
    let quoted = this.#quoted;
    let rows = this.rows;
    let end = chunk.length;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      if (byte === 34) quoted = !quoted;
      else if (byte === 10 && !quoted && ++rows >= most) {
        end = i + 1;
        break;
      }
    }
    this.#quoted = quoted;
    this.rows = rows;
    return end;
  }
}

/** An export's bytes, with the rows they hold counted as they pass. */
export interface CountedBytes extends AsyncIterable<Buffer> {
  /** Rows whose last byte has passed (Parquet: 0). */
  readonly rows: number;
}

/**
 * `output` cut after its `most`-th row, its rows counted as they pass (RowCounter). Parquet is
 * never cut. The output is given back (which stops the engine's statement) once the rows are out,
 * or when this is given back, read or not.
 */
export function capRows(output: AsyncIterable<Buffer>, format: ExportFormat, most = Infinity): CountedBytes {
  const counter = new RowCounter(format);
  const source = output[Symbol.asyncIterator]();
  let done = false;
  const giveBack = async (): Promise<IteratorReturnResult<undefined>> => {
    if (!done) {
      done = true;
      await source.return?.();
    }
    return { done: true, value: undefined };
  };
  const iterator: AsyncIterator<Buffer, undefined> = {
    async next() {
      if (done || counter.rows >= most) return giveBack();
      const step = await source.next();
      if (step.done) {
        done = true;
        return { done: true, value: undefined };
      }
      const bytes = counter.add(step.value, most);
      return { done: false, value: bytes < step.value.length ? step.value.subarray(0, bytes) : step.value };
    },
    return: giveBack,
  };
  return {
    get rows() {
      return counter.rows;
    },
    [Symbol.asyncIterator]: () => iterator,
  };
}
