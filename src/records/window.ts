// Recent windows for aggregates (`window: { column: "at", last: "1h" }`): the rows whose DATETIME
// column falls in the trailing span ending now. Pure: the clock is a parameter.
import type { Column } from "../catalog/columns.js";
import { join, sql, ident, type Sql } from "../db/sql.js";
import { badInput } from "../errors.js";
import { literal } from "./values.js";

export interface WindowInput {
  /** A DATETIME column: the time each row belongs to. */
  column: string;
  /** A span ending now: a whole number then s, m, h or d ("90s", "5m", "1h", "24h", "7d"). */
  last: string;
}

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
const DURATION = /^([1-9][0-9]{0,6})([smhd])$/;
/** The longest window: a year and a day. */
export const MAX_WINDOW_SECONDS = 366 * 86_400;

const invalid = (problem: string) => badInput(`Invalid window: ${problem}`, { argument: "window" });

/** A duration's length in seconds. */
export function durationSeconds(text: unknown): number {
  const match = typeof text === "string" ? DURATION.exec(text) : null;
  if (!match)
    throw invalid(
      `last must be a whole number then s, m, h or d ("5m", "1h", "24h"), not ${JSON.stringify(text)}`,
    );
  const seconds = Number(match[1]) * UNITS[match[2]!]!;
  if (seconds > MAX_WINDOW_SECONDS) throw invalid(`last is at most ${MAX_WINDOW_SECONDS / 86_400}d`);
  return seconds;
}

/**
 * The condition for a window ending at `now` (whole seconds, as DATETIME stores them); `1` when
 * there is none. Rows stamped after now (clocks ahead) are outside it.
 */
export function compileWindow(
  columns: readonly Column[],
  window: WindowInput | null | undefined,
  now: Date,
): Sql {
  if (window === null || window === undefined) return sql`1`;
  const column = columns.find((c) => c.name === window.column);
  if (!column) throw invalid(`unknown column ${JSON.stringify(window.column)}`);
  if (column.type !== "DATETIME") {
    throw invalid(`column "${column.name}" is ${column.type}; a window needs a DATETIME column`);
  }
  const end = Math.floor(now.getTime() / 1000);
  const start = end - durationSeconds(window.last);
  // A literal of the column's own storage (Date/DateTime, DateTime64, epoch milliseconds).
  const at = (seconds: number) => literal(column, new Date(seconds * 1000));
  const col = sql`${ident(column.name)}`;
  return join([sql`${col} >= ${at(start)}`, sql`${col} <= ${at(end)}`], " AND ");
}
