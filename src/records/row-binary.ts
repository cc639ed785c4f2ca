// Rows as ClickHouse's RowBinary, the body of the inserts that write dataset tables. Binary
// because 18.16 parses Float64 text without correct rounding (docs/architecture.md §4: -114.6580911 is
// stored as -114.65809110000001): a float sent as its eight bytes is stored bit for bit, on 18.16
// and on current servers alike. Every other value is exact too (a Decimal by its unscaled integer,
// an Int64 by its bytes), and there is no escaping to get wrong. Pure; no I/O.
import type { Column } from "../catalog/columns.js";
import { decimalShape, epochDays } from "./values.js";

/**
 * A growing byte buffer the encoders append to. `take()` hands over what was written so far and
 * starts again; the buffer is reused, so the bytes taken are a copy.
 */
export class ByteWriter {
  private buffer = Buffer.allocUnsafe(64 * 1024);
  private offset = 0;

  get length(): number {
    return this.offset;
  }

  private room(bytes: number): void {
    if (this.offset + bytes <= this.buffer.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.offset + bytes));
    this.buffer.copy(next, 0, 0, this.offset);
    this.buffer = next;
  }

  uint8(value: number): void {
    this.room(1);
    this.buffer[this.offset++] = value;
  }

  uint16(value: number): void {
    this.room(2);
    this.offset = this.buffer.writeUInt16LE(value, this.offset);
  }

  int32(value: number): void {
    this.room(4);
    this.offset = this.buffer.writeInt32LE(value, this.offset);
  }

  uint32(value: number): void {
    this.room(4);
    this.offset = this.buffer.writeUInt32LE(value, this.offset);
  }

  int64(value: bigint): void {
    this.room(8);
    this.offset = this.buffer.writeBigInt64LE(value, this.offset);
  }

  uint64(value: bigint): void {
    this.room(8);
    this.offset = this.buffer.writeBigUInt64LE(value, this.offset);
  }

  /** A two's-complement 128-bit integer, low half first (ClickHouse's Int128 in memory). */
  int128(value: bigint): void {
    this.uint64(BigInt.asUintN(64, value));
    this.int64(BigInt.asIntN(64, value >> 64n));
  }

  float64(value: number): void {
    this.room(8);
    this.offset = this.buffer.writeDoubleLE(value, this.offset);
  }

  /** A String: its UTF-8 length as an unsigned LEB128, then the bytes. */
  string(text: string): void {
    // Up to 3 bytes per UTF-16 unit; checking the exact length first would encode twice.
    this.room(5 + text.length * 3);
    const start = this.offset;
    // Most strings are short: a one-byte length is assumed, and the bytes moved when it is not.
    const length = this.buffer.write(text, start + 1, "utf8");
    if (length < 0x80) {
      this.buffer[start] = length;
      this.offset = start + 1 + length;
      return;
    }
    const header: number[] = [];
    let rest = length;
    while (rest >= 0x80) {
      header.push((rest & 0x7f) | 0x80);
      rest >>>= 7;
    }
    header.push(rest);
    this.buffer.copy(this.buffer, start + header.length, start + 1, start + 1 + length);
    for (let i = 0; i < header.length; i++) this.buffer[start + i] = header[i]!;
    this.offset = start + header.length + length;
  }

  bytes(bytes: Uint8Array): void {
    this.room(bytes.length);
    this.buffer.set(bytes, this.offset);
    this.offset += bytes.length;
  }

  /** Forgets what was written after `length` bytes (a row that failed half-way). */
  truncate(length: number): void {
    this.offset = Math.min(this.offset, length);
  }

  /** What was written since the last take, as a buffer of its own. */
  take(): Buffer {
    const out = Buffer.from(this.buffer.subarray(0, this.offset));
    this.offset = 0;
    return out;
  }
}

/** Appends one non-null value, given in its column's JSON representation (catalog/columns.ts). */
export type ValueWriter = (out: ByteWriter, value: unknown) => void;

/** The seconds since the epoch of an ISO date-time (negative before 1970). */
export function epochSeconds(iso: string): number {
  return Math.floor(Date.parse(iso) / 1000);
}

/** A canonical decimal text (values.ts parseDecimal) as its unscaled integer. */
export function unscaled(text: string): bigint {
  return BigInt(text.replace(".", ""));
}

/** How a non-null value of the column is written, matching clickHouseType (catalog/columns.ts). */
export function valueWriter(column: Pick<Column, "type" | "precision" | "scale" | "storage">): ValueWriter {
  switch (column.type) {
    case "STRING":
      return (out, v) => out.string(v as string);
    case "INT32":
      return (out, v) => out.int32(v as number);
    case "INT64":
      return (out, v) => out.int64(BigInt(v as string));
    case "FLOAT64":
      return (out, v) => out.float64(v as number);
    case "DECIMAL": {
      const { precision } = decimalShape(column);
      if (precision <= 9) return (out, v) => out.int32(Number(unscaled(v as string)));
      if (precision <= 18) return (out, v) => out.int64(unscaled(v as string));
      return (out, v) => out.int128(unscaled(v as string));
    }
    case "BOOLEAN":
      return (out, v) => out.uint8(v ? 1 : 0);
    // Date32 is its Int32 of days and DateTime64(3) its Int64 of milliseconds, as epoch storage.
    case "DATE":
      if (column.storage === undefined) return (out, v) => out.uint16(epochDays(v as string));
      return (out, v) => out.int32(epochDays(v as string));
    case "DATETIME":
      if (column.storage === undefined) return (out, v) => out.uint32(epochSeconds(v as string));
      return (out, v) => out.int64(BigInt(Date.parse(v as string)));
  }
}

/** The bytes of the type's default value (what a tombstone holds in a column it leaves out). */
export function defaultBytes(column: Pick<Column, "type" | "precision" | "scale" | "storage">): Buffer {
  const out = new ByteWriter();
  const zero: Record<Column["type"], unknown> = {
    STRING: "",
    INT32: 0,
    INT64: "0",
    FLOAT64: 0,
    DECIMAL: "0",
    BOOLEAN: false,
    DATE: "1970-01-01",
    DATETIME: "1970-01-01T00:00:00Z",
  };
  valueWriter(column)(out, zero[column.type]);
  return out.take();
}
