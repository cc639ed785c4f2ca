// Records and keys as clients send them to change a dataset (corrections), checked against the
// dataset's columns before anything is written: one bad value refuses the whole call, naming the
// record and the column. Pure; no I/O.
import { canonicalKey, type Column } from "../catalog/columns.js";
import { badInput } from "../errors.js";
import type { DatasetRef } from "../records/records.writer.js";
import { toRepresentation } from "../records/values.js";
import { ValueError } from "../records/values.js";

type Schema = Pick<DatasetRef, "columns" | "keyColumns">;
type Row = Record<string, unknown>;

function isObject(value: unknown): value is Row {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function problem(argument: string, index: number, column: string | null, message: string) {
  const where = column === null ? `${argument}[${index}]` : `${argument}[${index}].${column}`;
  return badInput(`${where}: ${message}`, { argument, index, ...(column === null ? {} : { column }) });
}

/** The value in its JSON representation (what readers return), or a client error naming it. */
function typedValue(column: Column, value: unknown, required: boolean, at: (m: string) => Error): unknown {
  if (value === null || value === undefined) {
    if (required) throw at(`is required (${column.type})`);
    return null;
  }
  try {
    return toRepresentation(column, value);
  } catch (error) {
    if (error instanceof ValueError) throw at(`${column.type} ${error.message}`);
    throw error;
  }
}

function checkObject(schema: Schema, item: unknown, index: number, argument: string, keysOnly: boolean): Row {
  if (!isObject(item)) {
    throw problem(
      argument,
      index,
      null,
      keysOnly ? "must be an object of the key columns" : "must be an object",
    );
  }
  const columns = keysOnly
    ? schema.keyColumns.map((name) => schema.columns.find((c) => c.name === name)!)
    : schema.columns;
  // A misspelt column would otherwise be dropped silently and its real column set to null.
  const unknown = Object.keys(item).filter((name) => !columns.some((c) => c.name === name));
  if (unknown.length) {
    const allowed = keysOnly ? `the key columns are ${schema.keyColumns.join(", ")}` : "not a column";
    throw problem(argument, index, unknown[0]!, allowed);
  }
  const row: Row = {};
  for (const column of columns) {
    const required = !column.nullable || schema.keyColumns.includes(column.name);
    row[column.name] = typedValue(column, item[column.name], required, (m) =>
      problem(argument, index, column.name, m),
    );
  }
  return row;
}

/**
 * Whole records: every column (nullable ones may be left out: null), nothing else, each key once
 * (two versions of one key in one write would leave which one wins to the storage engine).
 */
export function checkRecords(schema: Schema, records: readonly unknown[], argument = "records"): Row[] {
  const rows = records.map((item, index) => checkObject(schema, item, index, argument, false));
  const seen = new Map<string, number>();
  rows.forEach((row, index) => {
    const key = canonicalKey(schema.keyColumns, row);
    const first = seen.get(key);
    if (first !== undefined) throw problem(argument, index, null, `repeats the key of ${argument}[${first}]`);
    seen.set(key, index);
  });
  return rows;
}

/** Keys: objects of exactly the key columns' values. */
export function checkKeys(schema: Schema, keys: readonly unknown[], argument = "keys"): Row[] {
  return keys.map((item, index) => checkObject(schema, item, index, argument, true));
}

/**
 * The key object for a canonical key text (columns.ts canonicalKey: the value for a one-column
 * key, a JSON array of the values' text for a composite key), as REST paths carry it.
 */
export function keyFromText(schema: Schema, text: string): Row {
  const invalid = (message: string) => badInput(`Invalid key: ${message}`, { argument: "key" });
  let parts: unknown[] = [text];
  if (schema.keyColumns.length > 1) {
    try {
      parts = JSON.parse(text) as unknown[];
    } catch {
      parts = [];
    }
    if (!Array.isArray(parts) || parts.length !== schema.keyColumns.length) {
      throw invalid(`this dataset's key is a JSON array of ${schema.keyColumns.join(", ")}`);
    }
  }
  const key: Row = {};
  schema.keyColumns.forEach((name, i) => {
    const column = schema.columns.find((c) => c.name === name)!;
    const part = parts[i];
    // canonicalKey writes booleans as true/false text; every other type parses from its text.
    key[name] = column.type === "BOOLEAN" && (part === "true" || part === "false") ? part === "true" : part;
  });
  return checkKeys(schema, [key], "key")[0]!;
}
