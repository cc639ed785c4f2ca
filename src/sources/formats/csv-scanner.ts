// The CSV reader's fast path. csv-parse copies every byte into buffers and decodes each field on
// its own, which made it most of a pipeline run's CPU; this scanner splits decoded text with
// indexOf and slices. It takes only what it is sure csv-parse reads the same way: fields plain or
// fully quoted (with "" escapes), one line ending throughout (\n or \r\n, found as csv-parse finds
// it), empty lines skipped. At anything else — text after a closing quote,
// a quote left open, a stray \r, a delimiter that is not one plain character — it hands the rest
// of the file, from the start of that record, to csv-parse with the same options, so malformed
// records fail with csv-parse's reasons as before. A quote inside an unquoted field is text in both.
import { parse, type CsvError, type Parser } from "csv-parse";

/** Where the records go: in file order, synchronously from write() and end(). */
export interface CsvSink {
  /** A record's fields and its text (with or without its line ending). */
  record(fields: string[], raw: string): void;
  /** A record csv-parse could not read, with its reason. */
  skip(reason: string, raw: string): void;
  /** The file cannot be read at all. */
  fail(error: unknown): void;
}

const QUOTE = 34;
const CR = 13;
const LF = 10;
/** A record longer than this still incomplete goes to csv-parse rather than be scanned again. */
const MAX_PENDING = 1 << 20;

export class CsvScanner {
  private buffer = "";
  private eol: "" | "\n" | "\r\n" = "";
  /**
   * Lines in the text already consumed, as csv-parse counts them: each CR and each LF, except that
   * a \r\n line ending counts once (hence `pairs`, the \r\n endings consumed in this scan).
   */
  private lines = 0;
  private pairs = 0;
  private fallback: Parser | null = null;
  private readonly delimiter: number;

  constructor(
    private readonly delimiterText: string,
    private readonly sink: CsvSink,
  ) {
    this.delimiter = delimiterText.charCodeAt(0);
    if (delimiterText.length !== 1 || '"\r\n'.includes(delimiterText)) this.startFallback("");
  }

  /** Takes decoded text (formats/text.ts). */
  write(text: string): void {
    if (this.fallback) this.fallback.write(text);
    else this.scan(text, false);
  }

  /** Resolves once every record went to the sink. */
  end(): Promise<void> {
    if (!this.fallback) this.scan("", true);
    const parser = this.fallback;
    if (!parser) return Promise.resolve();
    const ended = new Promise<void>((resolve) => parser.once("end", resolve).once("error", () => resolve()));
    parser.end();
    return ended;
  }

  destroy(): void {
    this.fallback?.destroy();
    this.buffer = "";
  }

  private scan(text: string, final: boolean): void {
    const buf = this.buffer + text;
    const n = buf.length;
    const delimiter = this.delimiter;
    let p = 0; // start of the current record
    records: while (p < n) {
      const first = buf.charCodeAt(p);
      if (first === CR || first === LF) {
        // An empty line: skipped, as csv-parse's skip_empty_lines does.
        const length = this.eolAt(buf, p, final);
        if (length < 0) break;
        if (length === 0) return this.handOver(buf, p);
        p += length;
        continue;
      }
      const fields: string[] = [];
      let i = p;
      for (;;) {
        if (i < n && buf.charCodeAt(i) === QUOTE) {
          let value = "";
          let j = i + 1;
          for (;;) {
            const q = buf.indexOf('"', j);
            if (q === -1) {
              if (final) return this.handOver(buf, p); // a quote left open
              break records;
            }
            if (q + 1 >= n && !final) break records;
            if (q + 1 < n && buf.charCodeAt(q + 1) === QUOTE) {
              value += buf.slice(j, q + 1);
              j = q + 2;
              continue;
            }
            value += buf.slice(j, q);
            i = q + 1;
            break;
          }
          fields.push(value);
        } else {
          // A quote inside an unquoted field is text, as csv-parse's relax_quotes reads it.
          let k = i;
          while (k < n) {
            const c = buf.charCodeAt(k);
            if (c === delimiter || c === LF || c === CR) break;
            k++;
          }
          if (k >= n && !final) break records;
          fields.push(buf.slice(i, k));
          i = k;
        }
        if (i >= n) {
          if (!final) break records;
          this.sink.record(fields, buf.slice(p, n));
          p = n;
          continue records;
        }
        const c = buf.charCodeAt(i);
        if (c === delimiter) {
          i++;
          continue;
        }
        const length = c === CR || c === LF ? this.eolAt(buf, i, final) : 0;
        if (length < 0) break records;
        if (length === 0) return this.handOver(buf, p); // text after a closing quote, a stray \r
        this.sink.record(fields, buf.slice(p, i));
        p = i + length;
        continue records;
      }
    }
    this.count(buf, p);
    this.buffer = buf.slice(p);
    if (this.buffer.length > MAX_PENDING) this.handOver(this.buffer, 0);
  }

  /** The length of the line ending at `i` (1 or 2); 0 when csv-parse would read it otherwise; -1: more text needed. */
  private eolAt(buf: string, i: number, final: boolean): number {
    const c = buf.charCodeAt(i);
    if (c === LF) {
      if (this.eol === "\r\n") return 0;
      this.eol = "\n";
      return 1;
    }
    if (c !== CR || this.eol === "\n") return 0;
    if (i + 1 >= buf.length) return final ? 0 : -1;
    if (buf.charCodeAt(i + 1) !== LF) return 0; // csv-parse would take a lone \r as the line ending
    this.eol = "\r\n";
    this.pairs++;
    return 2;
  }

  private count(buf: string, consumed: number): void {
    this.lines += lineBreaks(buf, 0, consumed) - this.pairs;
    this.pairs = 0;
  }

  private handOver(buf: string, p: number): void {
    this.count(buf, p);
    this.buffer = "";
    this.startFallback(buf.slice(p));
  }

  private startFallback(text: string): void {
    const offset = this.lines;
    const parser = parse({
      delimiter: this.delimiterText,
      ...(this.eol ? { record_delimiter: this.eol } : {}),
      relax_column_count: true,
      skip_empty_lines: true,
      skip_records_with_error: true,
      // A quote inside an unquoted field is text (5'10", say "hi" there), as the scanner reads it.
      relax_quotes: true,
      raw: true,
      // With `raw: true` csv-parse hands on_record the pair { record, raw }, not the bare fields.
      on_record: (output: unknown) => {
        const { record, raw } = output as { record: string[]; raw: string };
        this.sink.record(record, raw);
        return null;
      },
      on_skip: (err: CsvError | undefined, raw: string | undefined) => {
        this.sink.skip(skipReason(err, offset), raw ?? "");
        return undefined;
      },
    });
    parser.on("error", (err) => this.sink.fail(err));
    parser.resume();
    this.fallback = parser;
    if (text) parser.write(text);
  }
}

/**
 * csv-parse's reason for a record it skipped, with line numbers counted from the file's start (it
 * counts from where it took over) and the column one-based, as a spreadsheet shows it (csv-parse
 * says "field 1" for the second field).
 */
export function skipReason(err: CsvError | undefined, lineOffset: number): string {
  const message = (err?.message ?? "unreadable CSV record")
    .replace(
      /\b(at|on) line (\d+)/g,
      (_, word: string, line: string) => `${word} line ${Number(line) + lineOffset}`,
    )
    .replace(/\bfield (\d+)/g, (_, field: string) => `column ${Number(field) + 1}`);
  const index = (err as { index?: unknown } | undefined)?.index;
  return typeof index === "number" && !/\bcolumn \d+/.test(message)
    ? `${message} (column ${index + 1})`
    : message;
}

/** CR and LF characters between `from` and `to`. */
function lineBreaks(text: string, from: number, to: number): number {
  let count = 0;
  for (const ch of ["\n", "\r"]) {
    for (let i = text.indexOf(ch, from); i !== -1 && i < to; i = text.indexOf(ch, i + 1)) count++;
  }
  return count;
}
