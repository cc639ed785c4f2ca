// The only way to build ClickHouse SQL. Every identifier is validated and back-quoted; every
// value is rendered by type. A fragment has two renderings of the same statement: `text`, with
// every value a literal (what ClickHouse 18.16 needs: it has no server-side query parameters,
// docs/architecture.md §4), and `parameterized()`, where each string value becomes a `{pN:String}` query
// parameter sent beside the statement (engines from 20.x: text from users never becomes SQL).
// There is deliberately no `raw()`: text reaches a query only as the static parts of an `sql`
// template written in code.

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

/** A string value inside a fragment: a literal in `text`, a query parameter when parameterized. */
interface StringValue {
  readonly value: string;
}

/** A fragment's pieces: SQL text, and the string values between them. */
type Chunk = string | StringValue;

/** A statement with its string values as query parameters; see {@link Sql.parameterized}. */
export interface ParameterizedSql {
  text: string;
  params: Record<string, string>;
}

/** A fragment of ClickHouse SQL, safe to send or to interpolate into another `sql` template. */
export class Sql {
  readonly #chunks: readonly Chunk[];
  #text: string | undefined;

  /** @internal Use the `sql` template; the token keeps other modules from wrapping raw text. */
  constructor(key: typeof token, chunks: readonly Chunk[]) {
    if (key !== token) throw new TypeError("Sql fragments are made with the sql`...` template only");
    this.#chunks = chunks;
    Object.freeze(this); // the rendering cache is a private field, which freezing leaves writable
  }

  /** The statement with every value a literal (runs on every engine, 18.16 included). */
  get text(): string {
    this.#text ??= this.#chunks
      .map((chunk) => (typeof chunk === "string" ? chunk : quoteString(chunk.value)))
      .join("");
    return this.#text;
  }

  /**
   * The statement with each string value replaced by a `{pN:String}` parameter, and the values
   * to send beside it. Only for engines with query parameters (not 18.16), and only for queries:
   * DDL takes no parameters.
   */
  parameterized(): ParameterizedSql {
    let text = "";
    const params: Record<string, string> = {};
    let n = 0;
    for (const chunk of this.#chunks) {
      if (typeof chunk === "string") {
        text += chunk;
      } else {
        const name = `p${n++}`;
        params[name] = chunk.value;
        text += `{${name}:String}`;
      }
    }
    return { text, params };
  }

  /** @internal The pieces, for templates that embed this fragment. */
  static chunksOf(fragment: Sql): readonly Chunk[] {
    return fragment.#chunks;
  }

  toString(): string {
    return this.text;
  }

  static is(value: unknown): value is Sql {
    return typeof value === "object" && value !== null && #chunks in value;
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

/** Appends a value's rendering to `out`: SQL text, or a string value kept apart. */
function formatValue(value: unknown, out: Chunk[]): void {
  if (value === null || value === undefined) return void out.push("NULL");
  switch (typeof value) {
    case "string":
      quoteString(value); // refuses what no rendering could send unchanged
      return void out.push({ value });
    case "number":
      return void out.push(formatNumber(value));
    case "bigint":
      return void out.push(formatBigInt(value));
    case "boolean":
      return void out.push(value ? "1" : "0"); // booleans are UInt8 on 18.16
    case "object":
      if (Sql.is(value)) return void out.push(...Sql.chunksOf(value));
      if (Identifier.is(value)) return void out.push(value.text);
      if (value instanceof Date) return void out.push(formatDate(value));
      if (Array.isArray(value)) return void formatList("[", value, "]", out);
      break;
  }
  const what =
    typeof value === "object" ? (value.constructor?.name ?? "null-prototype object") : typeof value;
  throw new TypeError(
    `Cannot use a ${what} in SQL: pass a string, number, bigint, boolean, Date, null, array, sql fragment or ident()`,
  );
}

function formatList(open: string, values: readonly unknown[], close: string, out: Chunk[]): void {
  out.push(open);
  values.forEach((value, i) => {
    if (i > 0) out.push(", ");
    formatValue(value, out);
  });
  out.push(close);
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
  const chunks: Chunk[] = [strings[0] ?? ""];
  for (let i = 0; i < values.length; i++) {
    const next = strings[i + 1];
    if (next === undefined) throw new TypeError("sql template has an invalid escape sequence");
    formatValue(values[i], chunks);
    chunks.push(next);
  }
  return new Sql(token, chunks);
}

const empty = new Sql(token, []);

export const sql: typeof sqlTag & { readonly empty: Sql } = Object.assign(sqlTag, { empty });

const SEPARATOR = /^\s*(,|AND|OR|UNION ALL)?\s*$/i;

/**
 * Joins fragments with a separator. A string separator is limited to commas, AND, OR, UNION ALL
 * and whitespace so that `join` cannot become a way around the template; pass an `Sql` fragment
 * for anything else.
 */
export function join(fragments: readonly Sql[], separator: Sql | string = ", "): Sql {
  let sep: readonly Chunk[];
  if (Sql.is(separator)) sep = Sql.chunksOf(separator);
  else if (typeof separator === "string" && SEPARATOR.test(separator)) sep = [separator];
  else
    throw new TypeError(`join separator ${JSON.stringify(separator)} is not allowed; pass an sql fragment`);
  const chunks: Chunk[] = [];
  fragments.forEach((fragment, i) => {
    if (!Sql.is(fragment)) throw new TypeError("join takes sql fragments only");
    if (i > 0) chunks.push(...sep);
    chunks.push(...Sql.chunksOf(fragment));
  });
  return new Sql(token, chunks);
}

/**
 * `(a, b, c)` for `x IN ${inList(values)}`. An empty list throws: `IN ()` is a syntax error, and
 * stand-ins such as `(NULL)` change meaning with settings like `transform_null_in`, so the caller
 * decides what "no values" means (usually: skip the query).
 */
export function inList(values: readonly SqlValue[]): Sql {
  if (!Array.isArray(values)) throw new TypeError("inList takes an array");
  if (values.length === 0) throw new RangeError("inList needs at least one value: IN () is not valid SQL");
  const chunks: Chunk[] = [];
  formatList("(", values, ")", chunks);
  return new Sql(token, chunks);
}

/** Same rendering as {@link inList}: `(a, b, c)`. */
export const tuple = inList;
