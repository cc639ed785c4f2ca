// Record values in their three forms: what clients send (filters, cursors, rows to write), the SQL
// literal a value becomes, and the JSON representation readers return (catalog/columns.ts
// JSON_REPRESENTATION). Pure; every literal is rendered by the `sql` template.
import { sql, type Sql } from "../db/sql.js";
import type { Column, ColumnType } from "../catalog/columns.js";

/** The parts of a column that decide how its values are parsed, compared and read. */
export type ValueType = Pick<Column, "type" | "precision" | "scale" | "storage">;

/** A value as clients send it in filters and cursors. */
export type Scalar = string | number | boolean | null;

/** A value that does not fit its column. Callers turn it into BAD_USER_INPUT (or a TypeError). */
export class ValueError extends Error {
  override readonly name = "ValueError";
}

const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/**
 * The days a DATE or DATETIME column holds (README, "Column types"). Columns made before the wide
 * range (no `storage`) are Date and DateTime, sharing what DateTime holds on 18.16 (a UInt32 of
 * seconds whose calendar tables end with 2105; beyond it the server wraps to 1970 silently).
 * Checked here, never left to the engine: current servers clamp a Date32 out of range silently.
 */
export function dayRange(type: Pick<ValueType, "storage">): { min: string; max: string } {
  return type.storage === undefined ? NARROW_DAYS : WIDE_DAYS;
}
const NARROW_DAYS = { min: "1970-01-01", max: "2105-12-31" };
const WIDE_DAYS = { min: "1900-01-01", max: "2299-12-31" };
/**
 * For a value not yet bound to a column (a cast step): the widest range; the column's own range
 * is checked when the row is made to fit its dataset.
 */
export const ANY_STORAGE = { storage: "wide" } as const satisfies Pick<ValueType, "storage">;

const INTEGER = /^[-+]?\d{1,40}$/;
const SHORT_CANONICAL_INTEGER = /^(?:0|-?[1-9]\d{0,17})$/;
const FLOAT = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const DECIMAL = /^([-+])?(\d+)(?:\.(\d+))?$/;
const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
// With the u flag a valid surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /\p{Surrogate}/u;

export function decimalShape(type: ValueType): { precision: number; scale: number } {
  return { precision: type.precision ?? 18, scale: type.scale ?? 0 };
}

export function isNumeric(type: ColumnType): boolean {
  return type === "INT32" || type === "INT64" || type === "FLOAT64" || type === "DECIMAL";
}

export function parseString(value: unknown): string {
  if (typeof value !== "string") throw new ValueError("expects a string");
  // Also what a source's invalid UTF-8 bytes become (sources/formats/text.ts).
  if (LONE_SURROGATE.test(value))
    throw new ValueError(
      "contains bytes that are not valid UTF-8 (check the source's encoding) or a lone UTF-16 surrogate",
    );
  return value;
}

export function parseInt32(value: unknown): number {
  const n = typeof value === "string" && INTEGER.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX) {
    throw new ValueError(`expects a whole number from ${INT32_MIN} to ${INT32_MAX}`);
  }
  return n === 0 ? 0 : n; // -0 → 0
}

export function parseInt64(value: unknown): bigint {
  let n: bigint | undefined;
  if (typeof value === "bigint") n = value;
  else if (typeof value === "string" && INTEGER.test(value)) n = BigInt(value);
  else if (typeof value === "number" && Number.isSafeInteger(value)) n = BigInt(value);
  if (n === undefined || n < INT64_MIN || n > INT64_MAX) {
    throw new ValueError("expects a whole number in the Int64 range (as a string beyond ±2^53)");
  }
  return n;
}

export function parseFloat64(value: unknown): number {
  const n = typeof value === "string" && FLOAT.test(value) ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n)) throw new ValueError("expects a finite number");
  return n === 0 ? 0 : n;
}

/**
 * A decimal as canonical text: no leading zeros, exactly `scale` digits after the point (what
 * ClickHouse's own toString prints), no sign on zero. Values with more fractional digits than
 * the column keeps are refused rather than rounded: `gte: "1.005"` on a scale-2 column has no
 * faithful rounding.
 */
export function parseDecimal(value: unknown, type: ValueType): string {
  const { precision, scale } = decimalShape(type);
  let text: string | undefined;
  if (typeof value === "string") text = value;
  else if (typeof value === "bigint") text = value.toString();
  else if (typeof value === "number" && Number.isFinite(value)) text = String(value);
  const match = text === undefined ? null : DECIMAL.exec(text);
  if (!match) throw new ValueError('expects a decimal number as a string, such as "12.50"');
  // The regular expressions run only when there are zeros to strip: this runs for every value.
  let integer = match[2]!;
  if (integer.length > 1 && integer.charCodeAt(0) === 48) integer = integer.replace(/^0+(?=\d)/, "");
  let fraction = match[3] ?? "";
  if (fraction.endsWith("0")) fraction = fraction.replace(/0+$/, "");
  if (fraction.length > scale) throw new ValueError(`has more than ${scale} digits after the point`);
  if ((integer === "0" ? 0 : integer.length) > precision - scale) {
    throw new ValueError(`does not fit Decimal(${precision}, ${scale})`);
  }
  const digits = scale > 0 ? `${integer}.${fraction.padEnd(scale, "0")}` : integer;
  const zero = integer === "0" && fraction === "";
  return match[1] === "-" && !zero ? `-${digits}` : digits;
}

/** Formats a Decimal's unscaled integer as canonical text (see {@link parseDecimal}). */
export function formatUnscaled(unscaled: bigint, scale: number): string {
  const negative = unscaled < 0n;
  const digits = (negative ? -unscaled : unscaled).toString().padStart(scale + 1, "0");
  const text = scale > 0 ? `${digits.slice(0, -scale)}.${digits.slice(-scale)}` : digits;
  return negative ? `-${text}` : text;
}

const MONTH_DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

// Arithmetic rather than a Date: ingestion checks every date of every row.
function validDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : MONTH_DAYS[month - 1]!);
}

function dayText(date: Date): string {
  return date.toISOString().slice(0, 10);
}

const DAY_MS = 86_400_000;

/** The days since 1970-01-01 of a 'YYYY-MM-DD' date (negative before). */
export function epochDays(day: string): number {
  return Math.round(Date.parse(`${day}T00:00:00Z`) / DAY_MS);
}

/** The 'YYYY-MM-DD' date so many days after 1970-01-01. */
export function dayOfEpoch(days: number): string {
  return dayText(new Date(days * DAY_MS));
}

/** A calendar date 'YYYY-MM-DD' (or a Date, taken in UTC) within what the column holds. */
export function parseDate(value: unknown, type: Pick<ValueType, "storage">): string {
  const text = value instanceof Date && !Number.isNaN(value.getTime()) ? dayText(value) : value;
  const m = typeof text === "string" ? DAY.exec(text) : null;
  if (!m || !validDay(Number(m[1]), Number(m[2]), Number(m[3]))) {
    throw new ValueError("expects a date as YYYY-MM-DD");
  }
  const { min, max } = dayRange(type);
  if (text! < min || text! > max) throw new ValueError(`expects a date from ${min} to ${max}`);
  return text as string;
}

interface TimeOptions extends Pick<ValueType, "storage"> {
  /** Drop fractions of a second rather than refuse them. */
  truncate?: boolean;
}

/**
 * An ISO 8601 date-time; without a zone it is UTC. `truncate` drops fractions of a second
 * (writing); otherwise a non-zero fraction is refused, because DateTime holds whole seconds and
 * `lt: "…:00.5Z"` would silently become `lt: "…:00Z"`.
 */
export function parseDateTime(value: unknown, opts: TimeOptions): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValueError("is an invalid Date");
    return checkDateTime(new Date(Math.floor(value.getTime() / 1000) * 1000), value.getTime() % 1000, opts);
  }
  const m = typeof value === "string" ? DATETIME.exec(value) : null;
  if (!m) throw new ValueError("expects an ISO 8601 date-time such as 2024-05-01T12:00:00Z");
  const [year, month, day, hour, minute, second] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  if (!validDay(year, month, day) || hour > 23 || minute > 59 || second > 59) {
    throw new ValueError("is not a valid date-time");
  }
  let offsetMinutes = 0;
  const zone = m[8];
  if (zone !== undefined && zone.toUpperCase() !== "Z") {
    const digits = zone.slice(1).replace(":", "");
    const hours = Number(digits.slice(0, 2));
    const minutes = Number(digits.slice(2) || "0");
    if (hours > 23 || minutes > 59) throw new ValueError("has an invalid time zone offset");
    offsetMinutes = (zone.startsWith("-") ? -1 : 1) * (hours * 60 + minutes);
  }
  const ms = Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
  return checkDateTime(new Date(ms), Number(m[7] ?? 0), opts);
}

function checkDateTime(date: Date, fraction: number, opts: TimeOptions): Date {
  if (fraction !== 0 && !opts.truncate)
    throw new ValueError("has fractions of a second; DATETIME holds whole seconds");
  const day = dayText(date);
  const { min, max } = dayRange(opts);
  if (day < min || day > max) throw new ValueError(`expects a date-time from ${min} to ${max} (UTC)`);
  return date;
}

/** 'YYYY-MM-DDThh:mm:ssZ', the JSON representation of DATETIME values. */
export function isoSeconds(date: Date): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

export function parseBoolean(value: unknown): boolean {
  if (typeof value === "boolean") return value;
  if (value === 0 || value === 1) return value === 1;
  throw new ValueError("expects true or false");
}

/** A value in its column's JSON representation (what readers return). Throws {@link ValueError}. */
export function toRepresentation(type: ValueType, value: unknown): string | number | boolean {
  switch (type.type) {
    case "STRING":
      return parseString(value);
    case "INT32":
      return parseInt32(value);
    case "INT64":
      // JSON has no 64-bit integers: text. Canonical text of up to 18 digits fits as it is.
      if (typeof value === "string" && SHORT_CANONICAL_INTEGER.test(value)) return value;
      return parseInt64(value).toString();
    case "FLOAT64":
      return parseFloat64(value);
    case "DECIMAL":
      return parseDecimal(value, type);
    case "BOOLEAN":
      return parseBoolean(value);
    case "DATE":
      return parseDate(value, type);
    case "DATETIME":
      return isoSeconds(parseDateTime(value, { truncate: true, storage: type.storage }));
  }
}

/**
 * The SQL literal for a non-null client value of the given type, of the column's own type so that
 * comparisons are exact (a decimal is never compared as a float). Throws {@link ValueError}.
 */
export function literal(type: ValueType, value: unknown): Sql {
  if (value === null || value === undefined) throw new ValueError("cannot be null here");
  switch (type.type) {
    case "STRING":
      return sql`${parseString(value)}`;
    case "INT32":
      return sql`${parseInt32(value)}`;
    case "INT64":
      return sql`${parseInt64(value)}`;
    case "FLOAT64":
      return float64Literal(parseFloat64(value));
    case "DECIMAL": {
      const { precision, scale } = decimalShape(type);
      return sql`CAST(${parseDecimal(value, type)} AS Decimal(${precision}, ${scale}))`;
    }
    case "BOOLEAN":
      return sql`${parseBoolean(value)}`;
    case "DATE":
      return dateLiteral(type, parseDate(value, type));
    case "DATETIME":
      return dateTimeLiteral(type, parseDateTime(value, { storage: type.storage }));
  }
}

function dateLiteral(type: ValueType, day: string): Sql {
  if (type.storage === "wide") return sql`toDate32(${day})`;
  return type.storage === "epoch" ? sql`${epochDays(day)}` : sql`toDate(${day})`;
}

function dateTimeLiteral(type: ValueType, at: Date): Sql {
  if (type.storage === "wide")
    return sql`toDateTime64(${isoSeconds(at).slice(0, 19).replace("T", " ")}, 3, 'UTC')`;
  return type.storage === "epoch" ? sql`${at.getTime()}` : sql`${at}`;
}

/**
 * A Float64 literal by its bits. 18.16's float parser is not correctly rounded: about 1 in 200
 * decimal texts (even its own output, 1 in 2,500) parse to a neighbouring double, so a value read
 * back and sent again as text would not equal itself and a keyset cursor could repeat a row.
 */
function float64Literal(value: number): Sql {
  const bytes = Buffer.alloc(8);
  bytes.writeDoubleLE(value);
  return sql`reinterpretAsFloat64(unhex(${bytes.toString("hex").toUpperCase()}))`;
}

// 18.16's toString of a Decimal128 whose unscaled value has 22 or more digits returns garbage
// (NUL bytes in the middle), while the binary value is right. Such decimals are read as their
// two 64-bit halves and formatted here; Decimal32/64 (precision <= 18) print correctly.
function needsHalves(type: ValueType): boolean {
  return type.type === "DECIMAL" && decimalShape(type).precision > 18;
}

/**
 * The expression to SELECT for a value of this type, paired with {@link fromTransport}: 64-bit
 * integers and decimals as text, DATETIME as UTC text. NULL stays NULL (functions propagate it).
 */
export function transportExpr(type: ValueType, expr: Sql): Sql {
  switch (type.type) {
    case "DATE":
      // A wide or epoch date travels as its days since 1970, which every engine prints alike.
      if (type.storage === "wide") return sql`toInt32(${expr})`;
      return type.storage === "epoch" ? expr : sql`toString(${expr})`;
    case "INT64":
      return sql`toString(${expr})`;
    case "DECIMAL":
      if (!needsHalves(type)) return sql`toString(${expr})`;
      return sql`concat(toString(reinterpretAsInt64(substring(reinterpretAsString(${expr}), 9, 8))), ':', toString(reinterpretAsUInt64(substring(reinterpretAsString(${expr}), 1, 8))))`;
    case "DATETIME":
      if (type.storage === "wide") return sql`toUnixTimestamp64Milli(${expr})`;
      return type.storage === "epoch" ? expr : sql`toString(${expr}, 'UTC')`;
    default:
      return expr;
  }
}

/**
 * A decimal's text with exactly `scale` fraction digits. 18.16 prints them all ("2.20"); current
 * ClickHouse drops trailing zeros ("2.2"), and the column's scale is part of the value.
 */
function withScale(text: string, scale: number): string {
  if (scale === 0) return text;
  const dot = text.indexOf(".");
  if (dot === -1) return `${text}.${"0".repeat(scale)}`;
  const missing = scale - (text.length - dot - 1);
  return missing > 0 ? text + "0".repeat(missing) : text;
}

/** Turns what {@link transportExpr} selected into the value's JSON representation. */
export function fromTransport(type: ValueType, raw: unknown): string | number | boolean | null {
  if (raw === null || raw === undefined) return null;
  switch (type.type) {
    case "BOOLEAN":
      return Number(raw) !== 0;
    case "INT32":
    case "FLOAT64":
      return Number(raw);
    // 18.16 prints the epoch (day 0, second 0) as zeros; current servers print the date.
    case "DATE":
      if (type.storage !== undefined) return dayOfEpoch(Number(raw));
      return raw === "0000-00-00" ? "1970-01-01" : String(raw);
    case "DATETIME":
      if (type.storage !== undefined) return isoSeconds(new Date(Number(raw)));
      return raw === "0000-00-00 00:00:00" ? "1970-01-01T00:00:00Z" : `${String(raw).replace(" ", "T")}Z`;
    case "DECIMAL": {
      const text = String(raw);
      const colon = text.indexOf(":");
      if (colon === -1) return withScale(text, decimalShape(type).scale);
      const unscaled = (BigInt(text.slice(0, colon)) << 64n) + BigInt(text.slice(colon + 1));
      return formatUnscaled(unscaled, decimalShape(type).scale);
    }
    default:
      return String(raw);
  }
}
