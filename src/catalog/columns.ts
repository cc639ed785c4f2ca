// A dataset's column schema: the types publishers choose from, how each is stored in ClickHouse
// (valid on 18.16 and current versions) and how its values travel in JSON. Pure; no I/O.
import { AppError } from "../errors.js";
import { sql, type Sql } from "../db/sql.js";

export const COLUMN_TYPES = [
  "STRING",
  "INT32",
  "INT64",
  "FLOAT64",
  "DECIMAL",
  "BOOLEAN",
  "DATE",
  "DATETIME",
] as const;
export type ColumnType = (typeof COLUMN_TYPES)[number];

export interface Column {
  name: string;
  type: ColumnType;
  /** DECIMAL only: total digits (1–38) and digits after the point. */
  precision?: number | null;
  scale?: number | null;
  nullable: boolean;
  description?: string | null;
  /**
   * DATE and DATETIME only: how the column is stored, chosen when the column is made
   * ({@link timeStorageFor}) and kept with the schema. Absent on columns made before the wide
   * range: those stay Date/DateTime (1970-01-01 to 2105-12-31).
   */
  storage?: TimeStorage;
}

/**
 * How a DATE or DATETIME column is stored (README, "Column types"). Both hold 1900-01-01 to
 * 2299-12-31 (DATETIME as UTC milliseconds, whole seconds written):
 * - `wide`: Date32 and DateTime64(3, 'UTC'), on engines from 22.8 (whose Date32 and DateTime64
 *   reach 1900–2299; 26.7 tested);
 * - `epoch`: Int32 days and Int64 milliseconds since 1970-01-01, on older servers (18.16 has
 *   neither type, and its Date and DateTime end at 1970 and 2105).
 */
export type TimeStorage = "wide" | "epoch";

/** The storage new DATE and DATETIME columns get on an engine of this version. */
export function timeStorageFor(version: { major: number; minor: number }): TimeStorage {
  return version.major > 22 || (version.major === 22 && version.minor >= 8) ? "wide" : "epoch";
}

/** `columns` with the storage new DATE and DATETIME columns get on this engine. */
export function withTimeStorage(columns: readonly Column[], storage: TimeStorage): Column[] {
  return columns.map((c) => (c.type === "DATE" || c.type === "DATETIME" ? { ...c, storage } : c));
}

/**
 * How values of each type appear in JSON responses. 64-bit integers and decimals are strings,
 * because JSON numbers lose precision past 2^53 and decimals must not become binary floats.
 */
export const JSON_REPRESENTATION: Record<ColumnType, "string" | "number" | "boolean"> = {
  STRING: "string",
  INT32: "number",
  INT64: "string",
  FLOAT64: "number",
  DECIMAL: "string",
  BOOLEAN: "boolean",
  DATE: "string", // YYYY-MM-DD
  DATETIME: "string", // ISO 8601 in UTC
};

// Names starting with an underscore are ours (_key, _version, ...); the rest must be plain
// identifiers so they can be quoted safely and used as GraphQL-facing keys.
export const COLUMN_NAME_PATTERN = /^[a-z][a-z0-9_]{0,62}$/;

export function validateColumns(columns: readonly Column[], keyColumns: readonly string[]): void {
  const problems: string[] = [];
  const names = new Set<string>();
  if (columns.length === 0) problems.push("a dataset needs at least one column");
  if (columns.length > 500) problems.push("at most 500 columns");
  for (const c of columns) {
    if (!COLUMN_NAME_PATTERN.test(c.name))
      problems.push(`column "${c.name}": names are lower-case letters, digits and _`);
    if (names.has(c.name)) problems.push(`column "${c.name}" appears twice`);
    names.add(c.name);
    if (!COLUMN_TYPES.includes(c.type)) problems.push(`column "${c.name}": unknown type ${c.type}`);
    if (c.type === "DECIMAL") {
      const p = c.precision ?? 0;
      const s = c.scale ?? 0;
      if (!Number.isInteger(p) || p < 1 || p > 38 || !Number.isInteger(s) || s < 0 || s > p) {
        problems.push(`column "${c.name}": DECIMAL needs precision 1–38 and scale 0–precision`);
      }
    }
  }
  if (keyColumns.length === 0) problems.push("at least one key column is needed");
  for (const k of keyColumns) {
    const column = columns.find((c) => c.name === k);
    if (!column) problems.push(`key column "${k}" is not a column`);
    else if (column.nullable) problems.push(`key column "${k}" cannot be nullable`);
  }
  if (problems.length)
    throw new AppError("BAD_USER_INPUT", `Invalid column schema: ${problems.join("; ")}`, { problems });
}

/** The ClickHouse type of a column. Built from fixed fragments: no text from input reaches SQL. */
export function clickHouseType(column: Column): Sql {
  const base = baseType(column);
  return column.nullable ? sql`Nullable(${base})` : base;
}

function baseType(column: Column): Sql {
  switch (column.type) {
    case "STRING":
      return sql`String`;
    case "INT32":
      return sql`Int32`;
    case "INT64":
      return sql`Int64`;
    case "FLOAT64":
      return sql`Float64`;
    case "DECIMAL":
      return sql`Decimal(${column.precision ?? 18}, ${column.scale ?? 0})`;
    case "BOOLEAN":
      return sql`UInt8`; // 18.16 has no Bool
    case "DATE":
      if (column.storage === "wide") return sql`Date32`;
      return column.storage === "epoch" ? sql`Int32` : sql`Date`;
    case "DATETIME":
      if (column.storage === "wide") return sql`DateTime64(3, 'UTC')`;
      return column.storage === "epoch" ? sql`Int64` : sql`DateTime`;
  }
}

/**
 * The canonical key of a row (its `_key`, and what `record(key:)` takes): the key column's value
 * as text when the key is one column; for composite keys a JSON array of the values as text,
 * which no separator choice could make ambiguous.
 */
export function canonicalKey(keyColumns: readonly string[], row: Record<string, unknown>): string {
  return keyOfValues(keyColumns.map((k) => row[k]));
}

/** {@link canonicalKey} from the key columns' values, in key order. */
export function keyOfValues(values: readonly unknown[]): string {
  const text = (v: unknown) => (v === null || v === undefined ? "" : String(v));
  return values.length === 1 ? text(values[0]) : JSON.stringify(values.map(text));
}
