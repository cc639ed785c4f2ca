// JSONata expressions for `filter` and `derive`. JSONata cannot reach JavaScript: field lookups
// only see own properties, so `constructor` and prototypes are out of reach. What remains is
// cost, bounded here: a timeout and a depth limit checked at every evaluation step, a cap on
// sequence length, no `$eval` (expressions are checked once, at definition time) and no regex
// literals, whose backtracking runs inside one step where the timeout cannot interrupt it.
import jsonata from "jsonata";

export const EXPRESSION_LIMITS = { timeout: 250, stack: 300, sequence: 100_000 } as const;

export interface Expression {
  evaluate(row: Record<string, unknown>): Promise<unknown>;
  /** Field names the expression mentions, so they do not count as new source fields. */
  names: Set<string>;
}

/** Compiles an expression; a string describes why it cannot be used. */
export function compileExpression(text: string): Expression | string {
  let expr: jsonata.Expression;
  try {
    expr = jsonata(text, { ...EXPRESSION_LIMITS });
  } catch (error) {
    const e = error as { message?: string; position?: number };
    return `${e.message ?? "invalid expression"}${e.position === undefined ? "" : ` at position ${e.position}`}`;
  }
  const names = new Set<string>();
  let regex = false;
  walk(expr.ast(), (node) => {
    if (node.type === "regex") regex = true;
    if (node.type === "name" && typeof node.value === "string") names.add(node.value);
  });
  if (regex) return "regular expressions are not allowed in expressions; use a validate step's pattern";
  expr.assign("eval", () => {
    throw new Error("$eval is not allowed");
  });
  return { evaluate: (row) => expr.evaluate(row), names };
}

function walk(node: unknown, visit: (node: { type?: unknown; value?: unknown }) => void): void {
  if (Array.isArray(node)) for (const child of node) walk(child, visit);
  else if (node !== null && typeof node === "object") {
    visit(node as { type?: unknown; value?: unknown });
    for (const child of Object.values(node)) walk(child, visit);
  }
}

/** What a failed evaluation says, without a stack. */
export function expressionError(error: unknown): string {
  const e = error as { message?: unknown; code?: unknown };
  if (typeof e?.message === "string" && e.message) return e.message;
  return typeof e?.code === "string" ? `error ${e.code}` : "expression failed";
}

/** A JSONata result as a plain JSON value: sequences become arrays, nothing becomes null. */
export function plainResult(value: unknown): unknown {
  if (value === undefined) return null;
  if (typeof value === "function") throw new Error("the expression returned a function");
  if (Array.isArray(value)) return value.map(plainResult);
  return value;
}
