// Records as bulk text: NDJSON and CSV, for the REST query and export endpoints. Pure; the
// streaming body of an export is a generator over batches, so what it holds at a time is one
// batch, never the dataset.
import type { Column } from "../catalog/columns.js";
import type { RecordRow } from "./records.reader.js";

export const TEXT_FORMATS = ["ndjson", "csv"] as const;
export type TextFormat = (typeof TEXT_FORMATS)[number];

export const CONTENT_TYPES: Record<TextFormat | "json", string> = {
  json: "application/json; charset=utf-8",
  ndjson: "application/x-ndjson; charset=utf-8",
  csv: "text/csv; charset=utf-8; header=present",
};

/**
 * One record per line: the values (in their JSON representation, columns.ts) plus `_key`, the
 * record's canonical key. Column names cannot start with an underscore, so `_key` never collides.
 * JSON.stringify escapes CR and LF inside strings, so a line is always exactly one record.
 */
export function ndjsonLines(rows: readonly RecordRow[]): string {
  let text = "";
  for (const row of rows) text += `${JSON.stringify({ _key: row.key, ...row.values })}\n`;
  return text;
}

// RFC 4180 §2: a field holding a comma, a double quote, CR or LF is quoted, quotes doubled.
const NEEDS_QUOTES = /[",\r\n]/;

/**
 * A value as one CSV field. NULL is the empty field and the empty string is `""`, so the two stay
 * apart; booleans are `true`/`false`; numbers and the string forms of INT64, DECIMAL, DATE and
 * DATETIME are written as their JSON representation. Nothing is prefixed against spreadsheet
 * formulas: the file is data, and altering values would corrupt it for every other reader.
 */
export function csvField(value: unknown): string {
  if (value === null || value === undefined) return "";
  const text = String(value);
  if (text === "") return '""';
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** The header row: `_key`, then the dataset's columns in schema order; CRLF-terminated. */
export function csvHeader(columns: readonly Column[]): string {
  return `${["_key", ...columns.map((c) => c.name)].map(csvField).join(",")}\r\n`;
}

/**
 * The TSV header row, as ClickHouse's TabSeparatedWithNames writes it: `_key`, then the columns,
 * tab-separated, backslash escapes, LF-terminated.
 */
export function tsvHeader(columns: readonly Column[]): string {
  const escape = (name: string) =>
    name.replace(/[\\\t\n]/g, (c) => (c === "\\" ? "\\\\" : c === "\t" ? "\\t" : "\\n"));
  return `${["_key", ...columns.map((c) => c.name)].map(escape).join("\t")}\n`;
}

/** Rows under {@link csvHeader}: fields in the header's order, CRLF line ends. */
export function csvLines(columns: readonly Column[], rows: readonly RecordRow[]): string {
  let text = "";
  for (const row of rows) {
    let line = csvField(row.key);
    for (const column of columns) line += `,${csvField(row.values[column.name])}`;
    text += `${line}\r\n`;
  }
  return text;
}

/** A whole page in one format (the header row included for CSV). */
export function formatRows(
  format: TextFormat,
  columns: readonly Column[],
  rows: readonly RecordRow[],
): string {
  return format === "csv" ? csvHeader(columns) + csvLines(columns, rows) : ndjsonLines(rows);
}

/**
 * The body of an export: the CSV header, then one chunk of text per batch. `progress.sent` counts
 * the rows handed on so far; it is what the buyer pays for when the stream stops early.
 */
export async function* exportBody(
  format: TextFormat,
  columns: readonly Column[],
  batches: AsyncIterable<RecordRow[]>,
  progress: { sent: number },
): AsyncGenerator<string> {
  if (format === "csv") yield csvHeader(columns);
  for await (const batch of batches) {
    const text = format === "csv" ? csvLines(columns, batch) : ndjsonLines(batch);
    progress.sent += batch.length;
    yield text;
  }
}
