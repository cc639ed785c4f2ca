import { CsvScanner } from "./csv-scanner.js";
import { AppError, badInput } from "../../errors.js";
import { decodeText, type TextEncoding } from "./text.js";
import type { ByteSource, ParsedRow } from "./types.js";

export interface CsvOptions {
  delimiter: string;
  /** First record names the columns; otherwise columns are `column1`, `column2`, … */
  header: boolean;
  /** @default "UTF_8" */
  encoding?: TextEncoding;
}

// An unquoted field cannot end in a line break, so trailing ones belong to the record delimiter.
const stripRecordDelimiter = (raw: string) => raw.replace(/[\r\n]+$/, "");

/** UTF-8 bytes of a record's text without its trailing line break. */
function recordBytes(raw: string): number {
  let end = raw.length;
  while (end > 0 && (raw.charCodeAt(end - 1) === 10 || raw.charCodeAt(end - 1) === 13)) end--;
  return Buffer.byteLength(end === raw.length ? raw : raw.slice(0, end));
}

/**
 * RFC 4180 records, streamed. CsvScanner (csv-scanner.ts) splits well-formed text itself and hands
 * anything else to csv-parse, which runs with `relax_column_count` so a ragged row reaches us and
 * becomes a failure with its field count, and with `skip_records_with_error` so a broken quote
 * fails that row only. Records arrive synchronously inside `write`, in file order, and become
 * rows at once.
 *
 * A hand-written iterator rather than an async generator: a row already parsed is handed on with
 * one resolved promise, where a generator's yield costs several ticks; per row, that was most of
 * the reader's time.
 */
export function readCsv(input: ByteSource, options: CsvOptions): AsyncIterable<ParsedRow> {
  return { [Symbol.asyncIterator]: () => new CsvRows(input, options) };
}

class CsvRows implements AsyncIterator<ParsedRow> {
  private queue: ParsedRow[] = [];
  private head = 0;
  private columns: string[] | undefined;
  private rowNumber = 0;
  private parserError: unknown;
  private readonly scanner: CsvScanner;
  private readonly chunks: AsyncIterator<string>;
  private ended = false;

  constructor(
    input: ByteSource,
    private readonly options: CsvOptions,
  ) {
    this.chunks = decodeText(input, options.encoding)[Symbol.asyncIterator]();
    this.scanner = new CsvScanner(options.delimiter, {
      record: (fields, raw) => this.onRecord(fields, raw),
      skip: (reason, raw) => {
        this.rowNumber += 1;
        this.queue.push({
          rowNumber: this.rowNumber,
          ok: false,
          raw: stripRecordDelimiter(raw),
          reasons: [reason],
        });
      },
      fail: (error) => (this.parserError ??= error),
    });
  }

  private onRecord(fields: string[], raw: string): void {
    const columns = this.columns;
    if (columns === undefined) {
      // Thrown from here, csv-parse would wrap it: it is kept and thrown as is by check().
      try {
        this.columns = this.options.header ? headerNames(fields) : fields.map((_, i) => `column${i + 1}`);
      } catch (error) {
        this.parserError = error;
        this.columns = [];
      }
      if (this.options.header || this.parserError) return;
      return this.onRecord(fields, raw);
    }
    const rowNumber = ++this.rowNumber;
    if (fields.length !== columns.length) {
      const where =
        fields.length > columns.length
          ? `column ${columns.length + 1} is one too many`
          : `column ${fields.length + 1} is missing`;
      const reasons = [`expected ${columns.length} fields, found ${fields.length}: ${where}`];
      this.queue.push({ rowNumber, ok: false, raw: stripRecordDelimiter(raw), reasons });
      return;
    }
    const record: Record<string, unknown> = {};
    for (let i = 0; i < columns.length; i++) record[columns[i]!] = fields[i];
    this.queue.push({ rowNumber, ok: true, record, bytes: recordBytes(raw) });
  }

  next(): Promise<IteratorResult<ParsedRow>> {
    if (this.head < this.queue.length) return Promise.resolve(this.take());
    return this.fill();
  }

  private take(): IteratorResult<ParsedRow> {
    const value = this.queue[this.head++]!;
    if (this.head === this.queue.length) {
      this.queue = [];
      this.head = 0;
    }
    return { value, done: false };
  }

  /** Feeds chunks to the parser until it has a row for us or the input is over. */
  private async fill(): Promise<IteratorResult<ParsedRow>> {
    try {
      while (this.head >= this.queue.length) {
        this.check();
        if (this.ended) {
          this.scanner.destroy();
          return { value: undefined, done: true };
        }
        const chunk = await this.chunks.next();
        if (chunk.done) {
          this.ended = true;
          await this.scanner.end();
        } else {
          this.scanner.write(chunk.value);
        }
      }
      this.check();
      return this.take();
    } catch (error) {
      await this.return();
      throw error;
    }
  }

  private check(): void {
    const error = this.parserError;
    if (error instanceof AppError) throw error;
    if (error) throw badInput(`The CSV file cannot be read: ${String(error)}`);
  }

  async return(): Promise<IteratorResult<ParsedRow>> {
    this.scanner.destroy();
    this.queue = [];
    this.head = 0;
    this.ended = true;
    await this.chunks.return?.();
    return { value: undefined, done: true };
  }
}

export function headerNames(fields: string[]): string[] {
  const names = fields.map((name, i) => name.trim() || `column${i + 1}`);
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) throw badInput(`The CSV header names the column "${name}" twice`, { column: name });
    seen.add(name);
  }
  return names;
}
