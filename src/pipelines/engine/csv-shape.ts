// Decides, byte by byte as a CSV file streams past, whether ClickHouse's CSV reader will split it
// into exactly the records and fields our own reader (sources/formats/csv.ts) would. The engine
// load (engine-load.ts) lets ClickHouse parse a file only when this says yes; anything it is
// unsure of sends the whole file through the Node path, whose reasons and counts are the reference.
//
// Where the readers differ, and so what is refused here: a quote inside an unquoted field or text
// after a closing quote (RFC 4180 errors we quarantine, ClickHouse keeps the text), spaces or tabs
// at either end of an unquoted field (18.16 and, by default, current servers trim them), a
// backslash (current servers read an unquoted \N as an empty string), a byte-order mark, blank
// lines (not records to us), a carriage return not followed by a line feed or line ends that change
// style, a record whose field count differs from the first, an unterminated quote, and text that is
// not UTF-8.
import { isUtf8 } from "node:buffer";

const QUOTE = 0x22;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const TAB = 0x09;
const BACKSLASH = 0x5c;
const MAX_FIRST_RECORD = 1 << 20;
/** Bytes of quoted text looked at in place before the rest is searched natively (push). */
const NEAR_BYTES = 32;

const enum State {
  FieldStart,
  Unquoted,
  Quoted,
  QuoteSeen,
  AfterCr,
}

export interface CsvShape {
  /** Records, the first (a header or not) included. */
  records: number;
  /** UTF-8 bytes of those records without their line ends. */
  recordBytes: number;
  /** Fields in every record. */
  fields: number;
  /** The first record's bytes without its line end (the header, when the file has one). */
  first: Buffer | null;
  /** The line end the file's records use, or null when it has a single unterminated record. */
  lineEnd: "\n" | "\r\n" | null;
  /** Whether the last record ends with a line end. */
  terminated: boolean;
}

export class CsvShapeCheck {
  /** Why ClickHouse might read the file differently; null while it reads the same so far. */
  problem: string | null = null;
  private state = State.FieldStart;
  private fields = 0;
  private expected = -1;
  private records = 0;
  private recordBytes = 0;
  /** Where the record being read starts, and where the line end that ends it starts. */
  private recordStart = 0;
  private lineEndAt = 0;
  /** The line end of the first record: "\n" (false) or "\r\n" (true). */
  private crlf: boolean | null = null;
  /** The byte before the current one. */
  private last = -1;
  private offset = 0;
  /** Copies of the chunks until the file's first record has ended (not kept by a later part). */
  private firstParts: Buffer[] | null;
  private first: Buffer | null = null;
  private utf8Tail: Buffer | null = null;

  /** 1 for the bytes that end an unquoted field's text: the delimiter, line ends and the quote. */
  private readonly special = new Uint8Array(256);

  /**
   * `start`: where in the file the bytes pushed begin, for a part of a file read on its own from a
   * record's start (the file's first record, which sets the field count, is then another part's).
   */
  constructor(
    private readonly delimiter: number,
    private readonly start = 0,
  ) {
    for (const byte of [delimiter, LF, CR, QUOTE]) this.special[byte] = 1;
    this.firstParts = start === 0 ? [] : null;
  }

  /** Whether every byte pushed so far ends a whole record: a part may end here. */
  get atRecordStart(): boolean {
    return !this.problem && this.state === State.FieldStart && this.recordStart === this.offset;
  }

  /** The first record's bytes without its line end, once it has ended. */
  get firstRecord(): Buffer | null {
    return this.first;
  }

  push(chunk: Buffer): void {
    if (this.problem) return;
    this.checkUtf8(chunk);
    if (this.start + this.offset === 0 && chunk[0] === 0xef && chunk[1] === 0xbb && chunk[2] === 0xbf)
      return this.fail("a byte-order mark");
    if (this.firstParts) {
      this.firstParts.push(Buffer.from(chunk));
      if (this.offset > MAX_FIRST_RECORD) return this.fail("a first record longer than 1 MiB");
    }
    const base = this.offset;
    const n = chunk.length;
    // Found natively once per chunk: it is refused wherever it is.
    const backslash = chunk.indexOf(BACKSLASH);
    if (backslash !== -1) return this.fail("a backslash", base + backslash);
    const delimiter = this.delimiter;
    const special = this.special;
    let state = this.state;
    let i = 0;
    while (i < n && !this.problem) {
      const byte = chunk[i]!;
      switch (state) {
        case State.FieldStart:
          if (byte === QUOTE) state = State.Quoted;
          else if (byte === delimiter) this.fields++;
          else if (byte === LF || byte === CR) state = this.lineEnd(byte, base + i);
          else if (byte === SPACE || byte === TAB)
            this.fail("an unquoted field starting with a space or tab", base + i);
          else state = State.Unquoted;
          i++;
          break;
        case State.Unquoted: {
          // Most bytes are ordinary: skip to the next delimiter, line end or quote.
          let j = i;
          while (j < n && special[chunk[j]!] === 0) j++;
          if (j === n) {
            i = n;
            break;
          }
          const found = chunk[j]!;
          const before = j > 0 ? chunk[j - 1]! : this.last;
          if (found === QUOTE) this.fail("a quote inside an unquoted field", base + j);
          else if (before === SPACE || before === TAB)
            this.fail("an unquoted field ending with a space or tab", base + j);
          else if (found === delimiter) {
            this.fields++;
            state = State.FieldStart;
          } else state = this.lineEnd(found, base + j);
          i = j + 1;
          break;
        }
        case State.Quoted: {
          // Most quoted text is short, and a call to indexOf costs more than a look at a few
          // bytes here: the next NEAR_BYTES are scanned in place, a longer stretch natively.
          let quote = i;
          const near = Math.min(n, i + NEAR_BYTES);
          while (quote < near && chunk[quote] !== QUOTE) quote++;
          if (quote === near) quote = near === n ? -1 : chunk.indexOf(QUOTE, near);
          if (quote === -1) i = n;
          else {
            state = State.QuoteSeen;
            i = quote + 1;
          }
          break;
        }
        case State.QuoteSeen:
          if (byte === QUOTE) state = State.Quoted;
          else if (byte === delimiter) {
            this.fields++;
            state = State.FieldStart;
          } else if (byte === LF || byte === CR) state = this.lineEnd(byte, base + i);
          else this.fail("text after a closing quote", base + i);
          i++;
          break;
        case State.AfterCr:
          if (byte !== LF) this.fail("a carriage return without a line feed", base + i);
          else {
            this.recordEnd(true);
            state = State.FieldStart;
          }
          i++;
          break;
      }
    }
    this.state = state;
    if (n > 0) this.last = chunk[n - 1]!;
    this.offset += n;
  }

  /** The file's shape once every byte was pushed, or the problem. */
  end(): CsvShape | { problem: string } {
    if (!this.problem) {
      if (this.utf8Tail) this.fail("text that is not UTF-8");
      else if (this.state === State.Quoted) this.fail("a quote that is never closed");
      else if (this.state === State.AfterCr) this.fail("a carriage return without a line feed");
      else if (this.state === State.Unquoted && (this.last === SPACE || this.last === TAB))
        this.fail("an unquoted field ending with a space or tab");
      else if (this.offset > this.recordStart) {
        this.lineEndAt = this.offset;
        this.endRecord(this.offset);
      }
    }
    if (this.problem) return { problem: this.problem };
    return {
      records: this.records,
      recordBytes: this.recordBytes,
      fields: this.expected,
      first: this.first,
      lineEnd: this.crlf === null ? null : this.crlf ? "\r\n" : "\n",
      terminated: this.last === LF,
    };
  }

  private lineEnd(byte: number, at: number): State {
    this.lineEndAt = at;
    if (at === this.recordStart) {
      this.fail("a blank line", at);
      return State.FieldStart;
    }
    if (byte === CR) return State.AfterCr;
    this.recordEnd(false);
    return State.FieldStart;
  }

  private recordEnd(crlf: boolean): void {
    if (this.crlf === null) this.crlf = crlf;
    else if (this.crlf !== crlf) return this.fail("line ends that change between \\n and \\r\\n");
    this.endRecord(this.lineEndAt + (crlf ? 2 : 1));
  }

  /** Ends the record whose line end starts at lineEndAt; the next record starts at `next`. */
  private endRecord(next: number): void {
    const fields = this.fields + 1;
    if (this.expected === -1) {
      this.expected = fields;
      if (this.firstParts) this.first = Buffer.concat(this.firstParts).subarray(0, this.lineEndAt);
      this.firstParts = null;
    } else if (fields !== this.expected) {
      return this.fail(`a record of ${fields} fields where the first has ${this.expected}`);
    }
    // The first record is counted too: the caller takes the header away.
    this.records++;
    this.recordBytes += this.lineEndAt - this.recordStart;
    this.fields = 0;
    this.recordStart = next;
  }

  private checkUtf8(chunk: Buffer): void {
    const text = this.utf8Tail ? Buffer.concat([this.utf8Tail, chunk]) : chunk;
    const whole = completeUtf8Length(text);
    this.utf8Tail = whole < text.length ? Buffer.from(text.subarray(whole)) : null;
    if (!isUtf8(text.subarray(0, whole))) this.fail("text that is not UTF-8");
  }

  private fail(what: string, at?: number): void {
    this.problem ??=
      at === undefined ? `the file has ${what}` : `the file has ${what} (byte ${this.start + at})`;
  }
}

/** The length of the longest prefix that does not end inside a UTF-8 sequence. */
function completeUtf8Length(bytes: Buffer): number {
  let i = bytes.length - 1;
  let continuation = 0;
  while (i >= 0 && continuation < 4 && (bytes[i]! & 0xc0) === 0x80) {
    i--;
    continuation++;
  }
  if (i < 0) return bytes.length;
  const lead = bytes[i]!;
  const needs = lead < 0x80 ? 1 : lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return i + needs <= bytes.length ? bytes.length : i;
}

/**
 * The shape of a file read as two parts, the second starting where the first's last record ended
 * (so the first is terminated and holds the file's first record).
 */
export function joinShapes(head: CsvShape, tail: CsvShape): CsvShape | { problem: string } {
  if (tail.fields !== head.fields)
    return { problem: `the file has a record of ${tail.fields} fields where the first has ${head.fields}` };
  if (tail.lineEnd !== null && tail.lineEnd !== head.lineEnd)
    return { problem: "the file has line ends that change between \\n and \\r\\n" };
  return {
    records: head.records + tail.records,
    recordBytes: head.recordBytes + tail.recordBytes,
    fields: head.fields,
    first: head.first,
    lineEnd: head.lineEnd,
    terminated: tail.terminated,
  };
}
