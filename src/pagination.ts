// Page arguments and cursors, independent of GraphQL and of the store. Services page with these;
// graphql/relay.ts turns a Page into a Relay connection.
import { badInput } from "./errors.js";

/**
 * Cursors carry the sort key of an edge (the values of every ORDER BY column, last the id).
 * They are opaque to clients: base64url of a versioned JSON array. A cursor that does not decode
 * to the shape the connection expects is rejected as BAD_USER_INPUT, never silently restarted.
 */
export type CursorKey = readonly (string | number | null)[];

const CURSOR_VERSION = 1;

export function encodeCursor(key: CursorKey): string {
  return Buffer.from(JSON.stringify([CURSOR_VERSION, ...key])).toString("base64url");
}

export function decodeCursor(cursor: string, arity: number, argument: string): CursorKey {
  const invalid = () => badInput("Invalid cursor", { argument });
  if (!/^[A-Za-z0-9_-]{1,2048}$/.test(cursor)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed[0] !== CURSOR_VERSION || parsed.length !== arity + 1) {
    throw invalid();
  }
  const key = parsed.slice(1) as unknown[];
  if (!key.every((v) => v === null || typeof v === "string" || typeof v === "number")) {
    throw invalid();
  }
  return key as CursorKey;
}

export interface PageArgs {
  first?: number | null;
  after?: string | null;
  last?: number | null;
  before?: string | null;
}

export interface PageLimits {
  maxLimit: number;
}

/** A validated request for one page: which way to read, how many, and from where. */
export interface PageRequest {
  direction: "forward" | "backward";
  size: number;
  after: string | null;
  before: string | null;
}

/**
 * Validates first/after/last/before. One of first/last is required and capped. Mixing
 * directions is refused rather than guessed at: the Relay spec allows it but no client needs it
 * and its meaning is easy to get wrong.
 */
export function pageRequest(args: PageArgs, limits: PageLimits): PageRequest {
  const { first, last } = args;
  const after = args.after ?? null;
  const before = args.before ?? null;
  if (first != null && last != null) throw badInput("Pass either first or last, not both");
  if (first != null && before != null) throw badInput("Use first with after, or last with before");
  if (last != null && after != null) throw badInput("Use first with after, or last with before");
  for (const [name, value] of [
    ["first", first],
    ["last", last],
  ] as const) {
    if (value != null && (!Number.isInteger(value) || value < 0 || value > limits.maxLimit)) {
      throw badInput(`${name} must be between 0 and ${limits.maxLimit}`, {
        argument: name,
        max: limits.maxLimit,
      });
    }
  }
  // Requiring a size makes the cost of every query visible in the query itself.
  if (first == null && last == null) {
    throw badInput("Pass first (with after) or last (with before)", { max: limits.maxLimit });
  }
  if (last != null) return { direction: "backward", size: last, after: null, before };
  return { direction: "forward", size: first!, after, before: null };
}

/**
 * Whether rows lie on one side of a page: known, or a probe run only if asked for. The side a
 * page was read towards is always known (one row more was read); the side behind its cursor
 * costs a query of its own, so it is left to the client: GraphQL resolves `pageInfo` fields that
 * are functions by calling them, so the probe runs only for a query that selects that field.
 */
export type PageFlag = boolean | (() => Promise<boolean>);

/** The flag's value, running the probe if it is one. */
export const pageFlag = async (flag: PageFlag): Promise<boolean> =>
  typeof flag === "function" ? flag() : flag;

/** One page of items in the requested order, each with the cursor that points at it. */
export interface Page<T> {
  items: T[];
  cursors: string[];
  hasNextPage: PageFlag;
  hasPreviousPage: PageFlag;
}
