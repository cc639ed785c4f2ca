// The only way to build ClickHouse SQL. ClickHouse 18.16 has no server-side query parameters
// (docs/architecture.md §4), so every value is rendered here as a literal, by type, and every identifier is
// validated and back-quoted. There is deliberately no `raw()`: text reaches a query only as the
// static parts of an `sql` template written in code.

/** Unforgeable brand: only this module can make `Sql` and `Identifier` objects. */
const token = Symbol("datahus.sql");

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

// DateTime on 18.16 is a UInt32 whose calendar tables end with 2105: 2106-01-01 and later wrap
// around to 1970 silently. Reject rather than store the wrong time.
const DATETIME_MAX_MS = Date.UTC(2106, 0, 1);

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

// 18.16's parser rejects subnormal float literals such as 5e-324 as a syntax error.
const FLOAT64_MIN_NORMAL = 2.2250738585072014e-308;

/** A fragment of ClickHouse SQL, safe to send or to interpolate into another `sql` template. */
export class Sql {
  readonly #text: string;

  /** @internal Use the `sql` template; the token keeps other modules from wrapping raw text. */
  constructor(key: typeof token, text: string) {
    if (key !== token) throw new TypeError("Sql fragments are made with the sql`...` template only");
    this.#text = text;
    Object.freeze(this);
  }

  get text(): string {
    return this.#text;
  }

  toString(): string {
    return this.#text;
  }

  static is(value: unknown): value is Sql {
    return typeof value === "object" && value !== null && #text in value;
  }
}

/** A validated, back-quoted identifier such as `db`.`table`; see {@link ident}. */
export class Identifier {
  readonly #text: string;

  /** @internal Use {@link ident}. */
  constructor(key: typeof token, parts: readonly string[]) {
    if (key !== token) throw new TypeError("Identifiers are made with ident() only");
    this.#text = parts.map(quoteIdentifierPart).join(".");
    Object.freeze(this);
  }

  get text(): string {
    return this.#text;
  }

  toString(): string {
    return this.#text;
  }

  static is(value: unknown): value is Identifier {
    return typeof value === "object" && value !== null && #text in value;
  }
}

export type SqlScalar = string | number | bigint | boolean | Date | null | undefined;
export type SqlValue = SqlScalar | Sql | Identifier | readonly SqlValue[];

function quoteIdentifierPart(name: string): string {
  if (typeof name !== "string" || !IDENTIFIER.test(name)) {
    throw new TypeError(`Invalid SQL identifier ${JSON.stringify(name)}: must match ${IDENTIFIER}`);
  }
  return `\`${name}\``;
}

/** `ident("t")` → `` `t` ``; `ident("db", "t")` → `` `db`.`t` ``. Throws on anything but `^[A-Za-z_][A-Za-z0-9_]*$`. */
export function ident(name: string, child?: string): Identifier {
  return new Identifier(token, child === undefined ? [name] : [name, child]);
}

// With the u flag a valid surrogate pair is one code point, so only unpaired halves match.
const LONE_SURROGATE = /\p{Surrogate}/u;

const STRING_ESCAPES: Readonly<Record<string, string>> = {
  "\\": "\\\\",
  "'": "\\'",
  "\0": "\\0",
  "\b": "\\b",
  "\f": "\\f",
  "\n": "\\n",
  "\r": "\\r",
  "\t": "\\t",
};

function hexEscape(char: string): string {
  return `\\x${char.charCodeAt(0).toString(16).padStart(2, "0").toUpperCase()}`;
}

/**
 * Backslash and quote must be escaped for correctness; control characters are escaped as well so
 * that a value can never break a log line or hide part of a query from a reader.
 */
export function quoteString(value: string): string {
  // A lone surrogate cannot be encoded as UTF-8: it would reach the server as U+FFFD, changed.
  if (LONE_SURROGATE.test(value)) throw new RangeError("String contains a lone UTF-16 surrogate");
  const escaped = value.replace(
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /[\\'\u0000-\u001f\u007f]/g,
    (char) => STRING_ESCAPES[char] ?? hexEscape(char),
  );
  return `'${escaped}'`;
}

// Negative literals are parenthesised so that a value is always one self-contained expression:
// `1-${-1}` must not become `1--1`, which would comment out the rest of the line.
function signed(digits: string): string {
  return digits.startsWith("-") ? `(${digits})` : digits;
}

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) throw new RangeError(`Cannot use ${value} in SQL: not a finite number`);
  if (value === 0) return "0"; // also turns -0 into 0
  if (Math.abs(value) < FLOAT64_MIN_NORMAL) {
    throw new RangeError(
      `Cannot use ${value} in SQL: subnormal floats are not valid literals on ClickHouse 18.16`,
    );
  }
  // Shortest round-trip form; ClickHouse reads exponent forms (1e-7, 1.5e+300) as Float64.
  return signed(String(value));
}

function formatBigInt(value: bigint): string {
  if (value < INT64_MIN || value > UINT64_MAX) {
    throw new RangeError(`Cannot use ${value}n in SQL: outside the Int64/UInt64 range`);
  }
  return signed(value.toString());
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, "0");
}

function formatDate(value: Date): string {
  const ms = value.getTime();
  if (Number.isNaN(ms)) throw new RangeError("Cannot use an invalid Date in SQL");
  if (ms < 0 || ms >= DATETIME_MAX_MS) {
    throw new RangeError(
      `Cannot use ${value.toISOString()} in SQL: DateTime holds 1970-01-01 to 2105-12-31 (UTC)`,
    );
  }
  const day = `${pad(value.getUTCFullYear(), 4)}-${pad(value.getUTCMonth() + 1)}-${pad(value.getUTCDate())}`;
  const time = `${pad(value.getUTCHours())}:${pad(value.getUTCMinutes())}:${pad(value.getUTCSeconds())}`;
  // The explicit zone keeps the instant right whatever the server's own time zone is.
  return `toDateTime('${day} ${time}', 'UTC')`;
}

function formatValue(value: unknown): string {
  if (value === null || value === undefined) return "NULL";
  switch (typeof value) {
    case "string":
      return quoteString(value);
    case "number":
      return formatNumber(value);
    case "bigint":
      return formatBigInt(value);
    case "boolean":
      return value ? "1" : "0"; // booleans are UInt8 on 18.16
    case "object":
      if (Sql.is(value) || Identifier.is(value)) return value.text;
      if (value instanceof Date) return formatDate(value);
      if (Array.isArray(value)) return `[${value.map(formatValue).join(", ")}]`;
      break;
  }
  const what =
    typeof value === "object" ? (value.constructor?.name ?? "null-prototype object") : typeof value;
  throw new TypeError(
    `Cannot use a ${what} in SQL: pass a string, number, bigint, boolean, Date, null, array, sql fragment or ident()`,
  );
}

function isTemplateStrings(strings: unknown): strings is TemplateStringsArray {
  return (
    Array.isArray(strings) &&
    Object.isFrozen(strings) &&
    Array.isArray((strings as unknown as TemplateStringsArray).raw)
  );
}

/**
 * Tagged template for ClickHouse SQL: static text is kept, each interpolation is rendered by type.
 *
 * - string → `'...'` with `\`, `'` and control characters escaped
 * - number → digits (throws on NaN/±Infinity), bigint → digits, negative ones in parentheses
 * - boolean → `1`/`0`; `null`/`undefined` → `NULL`; Date → `toDateTime('YYYY-MM-DD hh:mm:ss', 'UTC')`
 * - array → array literal `[a, b]` (use {@link inList} for `IN (a, b)`)
 * - `Sql` fragments and {@link ident} identifiers are inlined as they are
 * - anything else throws a TypeError
 */
function sqlTag(strings: TemplateStringsArray, ...values: readonly SqlValue[]): Sql {
  if (!isTemplateStrings(strings)) throw new TypeError("sql must be used as a tagged template: sql`...`");
  let text = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) {
    const next = strings[i + 1];
    if (next === undefined) throw new TypeError("sql template has an invalid escape sequence");
    text += formatValue(values[i]) + next;
  }
  return new Sql(token, text);
}

const empty = new Sql(token, "");

export const sql: typeof sqlTag & { readonly empty: Sql } = Object.assign(sqlTag, { empty });

const SEPARATOR = /^\s*(,|AND|OR|UNION ALL)?\s*$/i;

/**
 * Joins fragments with a separator. A string separator is limited to commas, AND, OR, UNION ALL
 * and whitespace so that `join` cannot become a way around the template; pass an `Sql` fragment
 * for anything else.
 */
export function join(fragments: readonly Sql[], separator: Sql | string = ", "): Sql {
  let sep: string;
  if (Sql.is(separator)) sep = separator.text;
  else if (typeof separator === "string" && SEPARATOR.test(separator)) sep = separator;
  else
    throw new TypeError(`join separator ${JSON.stringify(separator)} is not allowed; pass an sql fragment`);
  for (const fragment of fragments) {
    if (!Sql.is(fragment)) throw new TypeError("join takes sql fragments only");
  }
  return new Sql(token, fragments.map((f) => f.text).join(sep));
}

/**
 * `(a, b, c)` for `x IN ${inList(values)}`. An empty list throws: `IN ()` is a syntax error, and
 * stand-ins such as `(NULL)` change meaning with settings like `transform_null_in`, so the caller
 * decides what "no values" means (usually: skip the query).
 */
export function inList(values: readonly SqlValue[]): Sql {
  if (!Array.isArray(values)) throw new TypeError("inList takes an array");
  if (values.length === 0) throw new RangeError("inList needs at least one value: IN () is not valid SQL");
  return new Sql(token, `(${values.map(formatValue).join(", ")})`);
}

/** Same rendering as {@link inList}: `(a, b, c)`. */
export const tuple = inList;
