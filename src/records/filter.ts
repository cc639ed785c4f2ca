// Record filters: a small boolean language over a dataset's columns, compiled to a ClickHouse
// condition. Pure. Each value is checked against its column's type and rendered as a typed literal
// by the `sql` template; column names are looked up in the dataset's schema, never taken as given.
import { AppError, badInput } from "../errors.js";
import { ident, inList, join, sql, type Sql } from "../db/sql.js";
import type { Column } from "../catalog/columns.js";
import { literal, parseString, ValueError, type Scalar } from "./values.js";

export type { Scalar } from "./values.js";

/**
 * One node of a filter: either a condition on one column with exactly one operator, or a
 * combination (`and`, `or`, `not`; several in one node are ANDed). `{}` matches every row.
 *
 * Comparisons never match NULL (`ne: "x"` skips rows where the column is NULL), and each condition
 * is strictly true or false, so `not` is the exact complement. `eq: null` / `ne: null` mean
 * `isNull: true` / `isNull: false`.
 */
export interface RecordFilter {
  and?: RecordFilter[] | null;
  or?: RecordFilter[] | null;
  not?: RecordFilter | null;
  column?: string | null;
  eq?: Scalar;
  ne?: Scalar;
  gt?: Scalar;
  gte?: Scalar;
  lt?: Scalar;
  lte?: Scalar;
  in?: Scalar[] | null;
  /** STRING columns: the value occurs literally (no wildcards), case-sensitively. */
  contains?: string | null;
  /** STRING columns: the value starts with this text, case-sensitively. */
  startsWith?: string | null;
  isNull?: boolean | null;
}

export const FILTER_LIMITS = {
  /** Levels of and/or/not nesting, the top node being level 1. */
  maxDepth: 10,
  /** Conditions (nodes without and/or/not) in one filter. */
  maxLeaves: 100,
  /** Nodes of any kind, so that empty combinations cannot grow a query without bound either. */
  maxNodes: 200,
  /** Values in one `in` list. */
  maxInValues: 1000,
} as const;

const OPERATORS = ["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains", "startsWith", "isNull"] as const;
type Operator = (typeof OPERATORS)[number];
const COMBINATORS = ["and", "or", "not"] as const;
const FIELDS: ReadonlySet<string> = new Set<string>([...OPERATORS, ...COMBINATORS, "column"]);

const COMPARISON: Record<"eq" | "ne" | "gt" | "gte" | "lt" | "lte", Sql> = {
  eq: sql`=`,
  ne: sql`!=`,
  gt: sql`>`,
  gte: sql`>=`,
  lt: sql`<`,
  lte: sql`<=`,
};

// null means "not given" for every field but eq/ne, where it asks for NULL: GraphQL clients often
// send null for the input fields they do not use.
const present = (value: unknown) => value !== undefined && value !== null;
const given = (node: Record<string, unknown>, field: string) =>
  field === "eq" || field === "ne" ? node[field] !== undefined : present(node[field]);

class FilterCompiler {
  #leaves = 0;
  #nodes = 0;
  readonly #columns: ReadonlyMap<string, Column>;

  constructor(columns: readonly Column[]) {
    this.#columns = new Map(columns.map((c) => [c.name, c]));
  }

  node(filter: unknown, path: string, depth: number): Sql {
    if (depth > FILTER_LIMITS.maxDepth) {
      throw invalid(path, `nests deeper than ${FILTER_LIMITS.maxDepth} levels`);
    }
    if (++this.#nodes > FILTER_LIMITS.maxNodes) {
      throw invalid(path, `the filter has more than ${FILTER_LIMITS.maxNodes} nodes`);
    }
    if (typeof filter !== "object" || filter === null || Array.isArray(filter)) {
      throw invalid(path, "must be an object");
    }
    const node = filter as Record<string, unknown>;
    const unknown = Object.keys(node).filter((k) => !FIELDS.has(k) && node[k] !== undefined);
    if (unknown.length) throw invalid(path, `unknown field ${unknown.map((k) => `"${k}"`).join(", ")}`);

    const combined = COMBINATORS.filter((k) => present(node[k]));
    const leafFields = [...OPERATORS, "column"].filter((k) => given(node, k));
    if (combined.length > 0 && leafFields.length > 0) {
      throw invalid(path, "a node is either a condition (column + operator) or and/or/not, not both");
    }
    if (combined.length === 0) {
      if (++this.#leaves > FILTER_LIMITS.maxLeaves) {
        throw invalid(path, `the filter has more than ${FILTER_LIMITS.maxLeaves} conditions`);
      }
      return leafFields.length === 0 ? sql`1` : this.leaf(node as RecordFilter, path);
    }

    const parts: Sql[] = [];
    for (const key of ["and", "or"] as const) {
      const list = node[key];
      if (!present(list)) continue;
      if (!Array.isArray(list)) throw invalid(`${path}.${key}`, "must be a list of filters");
      const compiled = list.map((child, i) => this.node(child, `${path}.${key}[${i}]`, depth + 1));
      // The identities of AND and OR: all of nothing holds, any of nothing does not.
      if (compiled.length === 0) parts.push(key === "and" ? sql`1` : sql`0`);
      else parts.push(sql`(${join(compiled, key === "and" ? " AND " : " OR ")})`);
    }
    if (present(node.not)) parts.push(sql`(NOT ${this.node(node.not, `${path}.not`, depth + 1)})`);
    return parts.length === 1 ? parts[0]! : sql`(${join(parts, " AND ")})`;
  }

  private leaf(node: RecordFilter, path: string): Sql {
    if (typeof node.column !== "string" || node.column === "") {
      throw invalid(path, "a condition needs a column");
    }
    const column = this.#columns.get(node.column);
    if (!column) throw invalid(path, `unknown column "${node.column}"`);
    const ops = OPERATORS.filter((op) => given(node as Record<string, unknown>, op));
    if (ops.length !== 1) {
      throw invalid(
        path,
        ops.length === 0
          ? `a condition on "${column.name}" needs one operator (${OPERATORS.join(", ")})`
          : `a condition has one operator, found ${ops.join(", ")}; combine conditions with and/or`,
      );
    }
    const op = ops[0]!;
    try {
      return sql`(${this.condition(column, op, node[op], path)})`;
    } catch (error) {
      if (error instanceof ValueError) {
        throw invalid(`${path}.${op}`, `"${column.name}" (${column.type}) ${error.message}`);
      }
      throw error;
    }
  }

  private condition(column: Column, op: Operator, value: unknown, path: string): Sql {
    const col = ident(column.name);
    switch (op) {
      case "isNull":
        if (typeof value !== "boolean") throw new ValueError("isNull takes true or false");
        return value ? sql`isNull(${col})` : sql`isNotNull(${col})`;
      case "eq":
      case "ne":
        if (value === null) return op === "eq" ? sql`isNull(${col})` : sql`isNotNull(${col})`;
        return strict(column, sql`${col} ${COMPARISON[op]} ${literal(column, value)}`);
      case "gt":
      case "gte":
      case "lt":
      case "lte":
        return strict(column, sql`${col} ${COMPARISON[op]} ${literal(column, value)}`);
      case "in": {
        if (!Array.isArray(value)) throw new ValueError("in takes a list of values");
        if (value.length === 0) throw invalid(`${path}.in`, "in needs at least one value");
        if (value.length > FILTER_LIMITS.maxInValues) {
          throw invalid(`${path}.in`, `in takes at most ${FILTER_LIMITS.maxInValues} values`);
        }
        const literals = value.map((v, i) => {
          if (v === null) throw invalid(`${path}.in[${i}]`, "in cannot hold null; use isNull");
          try {
            return literal(column, v);
          } catch (error) {
            if (error instanceof ValueError) throw new ValueError(`${error.message} (in[${i}])`);
            throw error;
          }
        });
        return strict(column, sql`${col} IN ${inList(literals)}`);
      }
      case "contains":
      case "startsWith": {
        if (column.type !== "STRING") throw new ValueError(`${op} works on STRING columns only`);
        const needle = parseString(value);
        // position() matches bytes literally: no LIKE wildcards to escape.
        return strict(
          column,
          op === "contains" ? sql`position(${col}, ${needle}) > 0` : sql`startsWith(${col}, ${needle})`,
        );
      }
    }
  }
}

/** A comparison on a nullable column is NULL for NULL rows; make it false so NOT is a complement. */
function strict(column: Column, condition: Sql): Sql {
  return column.nullable ? sql`ifNull(${condition}, 0)` : condition;
}

function invalid(path: string, problem: string): AppError {
  return badInput(`Invalid filter at ${path}: ${problem}`, { argument: "filter", path });
}

/** The WHERE condition for a filter over the dataset's columns; `1` when there is none. */
export function compileFilter(
  dataset: { columns: readonly Column[] },
  filter: RecordFilter | null | undefined,
): Sql {
  if (filter == null) return sql`1`;
  return new FilterCompiler(dataset.columns).node(filter, "filter", 1);
}
