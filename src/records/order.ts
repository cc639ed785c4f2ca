// Sort keys and keyset cursors for record pages and aggregate groups. Pure.
//
// A sort key is the ordered columns, then `_key` ascending, which makes it total: every row has
// exactly one position, so pages neither repeat nor skip rows. A nullable column sorts as the
// pair (isNull(col) ASC, col): NULLs come last in both directions, and the cursor carries the pair.
import { createHash } from "node:crypto";
import { badInput } from "../errors.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
import { JSON_REPRESENTATION, type Column } from "../catalog/columns.js";
import { decodeCursor, encodeCursor } from "../pagination.js";
import { literal, ValueError, type ValueType } from "./values.js";

export type SortDirection = "ASC" | "DESC";

export type RecordOrder = { column: string; direction: SortDirection }[];

export const MAX_ORDER_COLUMNS = 3;

/** One term of a sort key: an expression over a row and the direction it sorts in. */
export interface SortTerm {
  /** Names the term in the cursor's fingerprint: a column, `_key`, or `column:BUCKET`. */
  label: string;
  expr: Sql;
  type: ValueType;
  nullable: boolean;
  direction: SortDirection;
}

/** A decoded cursor: for each term the literal of its value, or null where the value was NULL. */
export type SortKey = readonly (Sql | null)[];

const KEY_TERM: SortTerm = {
  label: "_key",
  expr: sql`${ident("_key")}`,
  type: { type: "STRING" },
  nullable: false,
  direction: "ASC",
};

/** Validates `orderBy` against the dataset's columns; the result always ends with `_key` ASC. */
export function recordSortTerms(
  columns: readonly Column[],
  orderBy: RecordOrder | null | undefined,
): SortTerm[] {
  const entries = orderBy ?? [];
  const invalid = (problem: string) => badInput(`Invalid orderBy: ${problem}`, { argument: "orderBy" });
  if (!Array.isArray(entries)) throw invalid("must be a list");
  if (entries.length > MAX_ORDER_COLUMNS) throw invalid(`at most ${MAX_ORDER_COLUMNS} columns`);
  const seen = new Set<string>();
  const terms = entries.map((entry): SortTerm => {
    const column = columns.find((c) => c.name === entry?.column);
    if (!column) throw invalid(`unknown column ${JSON.stringify(entry?.column)}`);
    if (seen.has(column.name)) throw invalid(`column "${column.name}" appears twice`);
    seen.add(column.name);
    if (entry.direction !== "ASC" && entry.direction !== "DESC") {
      throw invalid(`direction of "${column.name}" must be ASC or DESC`);
    }
    return {
      label: column.name,
      expr: sql`${ident(column.name)}`,
      type: column,
      nullable: column.nullable,
      direction: entry.direction,
    };
  });
  return [...terms, KEY_TERM];
}

// Ties the cursor to the sort it came from: a cursor of another orderBy (or another groupBy) with
// the same shape would otherwise be accepted and start the page at an arbitrary place.
const fingerprints = new WeakMap<readonly SortTerm[], string>();

function fingerprint(terms: readonly SortTerm[]): string {
  let fp = fingerprints.get(terms);
  if (fp === undefined) {
    const signature = terms.map((t) => `${t.label} ${t.direction}`).join(",");
    fp = createHash("sha256").update(signature).digest("base64url").slice(0, 8);
    fingerprints.set(terms, fp);
  }
  return fp;
}

/**
 * The cursor of the row whose sort values (in their JSON representation, one per term) are given:
 * `[fingerprint, ...values]`, a nullable term contributing `isNull, value`, booleans as 0/1.
 */
export function encodeSortCursor(terms: readonly SortTerm[], values: readonly unknown[]): string {
  const key: (string | number | null)[] = [fingerprint(terms)];
  terms.forEach((term, i) => {
    const value = values[i] ?? null;
    const plain = typeof value === "boolean" ? Number(value) : (value as string | number | null);
    if (term.nullable) key.push(plain === null ? 1 : 0, plain);
    else key.push(plain);
  });
  return encodeCursor(key);
}

/** Decodes a cursor made by {@link encodeSortCursor} for the same terms; else "Invalid cursor". */
export function decodeSortCursor(terms: readonly SortTerm[], cursor: string, argument: string): SortKey {
  const arity = terms.reduce((n, t) => n + (t.nullable ? 2 : 1), 1);
  const raw = decodeCursor(cursor, arity, argument);
  const invalid = () => badInput("Invalid cursor", { argument });
  if (raw[0] !== fingerprint(terms)) throw invalid();
  let at = 1;
  return terms.map((term) => {
    if (term.nullable) {
      const isNull = raw[at++];
      const value = raw[at++];
      if (isNull === 1 && value === null) return null;
      if (isNull !== 0) throw invalid();
      return literalOrInvalid(term.type, value, invalid);
    }
    return literalOrInvalid(term.type, raw[at++], invalid);
  });
}

function literalOrInvalid(type: ValueType, value: unknown, invalid: () => Error): Sql {
  // Cursors hold values in their JSON representation (booleans as 0/1); anything else was forged.
  const kind = JSON_REPRESENTATION[type.type];
  if (typeof value !== (kind === "boolean" ? "number" : kind)) throw invalid();
  try {
    return literal(type, value);
  } catch (error) {
    if (error instanceof ValueError) throw invalid();
    throw error;
  }
}

const ASC = sql`ASC`;
const DESC = sql`DESC`;

function flip(direction: SortDirection, reversed: boolean): SortDirection {
  return reversed === (direction === "ASC") ? "DESC" : "ASC";
}

/** `ORDER BY` items for the terms; `reversed` reads the same order backwards (for `last`). */
export function orderByClause(terms: readonly SortTerm[], reversed: boolean): Sql {
  const items = terms.flatMap((term) => {
    const dir = flip(term.direction, reversed) === "ASC" ? ASC : DESC;
    if (!term.nullable) return [sql`${term.expr} ${dir}`];
    const nulls = reversed ? DESC : ASC;
    return [sql`isNull(${term.expr}) ${nulls}`, sql`${term.expr} ${dir}`];
  });
  return join(items, ", ");
}

interface Component {
  expr: Sql;
  direction: SortDirection;
  value: Sql;
}

/**
 * The rows strictly after the cursor in the terms' order (or, `reversed`, strictly before it),
 * as `c1 > v1 OR (c1 = v1 AND (c2 > v2 OR (c2 = v2 AND ...)))` with `<` for descending terms.
 * Never NULL: nullable columns are compared as (isNull(col), assumeNotNull(col)), so NOT of it
 * is exactly "at or before the cursor".
 */
export function keysetPredicate(terms: readonly SortTerm[], key: SortKey, reversed: boolean): Sql {
  const components = terms.flatMap((term, i): Component[] => {
    const direction = flip(term.direction, reversed);
    const value = key[i] ?? null;
    if (!term.nullable) return [{ expr: term.expr, direction, value: value ?? sql`NULL` }];
    const isNull: Component = {
      expr: sql`isNull(${term.expr})`,
      direction: flip("ASC", reversed),
      value: sql`${value === null ? 1 : 0}`,
    };
    // Within the NULLs every row ties on this term; the next term decides.
    if (value === null) return [isNull];
    return [isNull, { expr: sql`assumeNotNull(${term.expr})`, direction, value }];
  });
  let predicate: Sql | null = null;
  for (const c of components.reverse()) {
    const beyond = c.direction === "ASC" ? sql`${c.expr} > ${c.value}` : sql`${c.expr} < ${c.value}`;
    predicate = predicate === null ? beyond : sql`(${beyond} OR (${c.expr} = ${c.value} AND ${predicate}))`;
  }
  return predicate ?? sql`0`;
}
