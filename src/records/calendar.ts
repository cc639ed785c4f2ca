// The calendar in SQL for DATE and DATETIME columns, for each way they are stored
// (catalog/columns.ts TimeStorage): the time buckets of aggregates (MINUTE, HOUR, DAY, WEEK, MONTH) and
// the ISO text of epoch-stored values for exports. Pure.
//
// Wide and epoch columns are handled by arithmetic on their days or milliseconds since 1970, not
// by the engine's date functions: 18.16 has none for integers before 1970, and on current
// servers toStartOfMonth and toMonday of a Date32 return a Date, which clamps 1969 to 1970
// unless a setting says otherwise (measured on 26.7).
import type { Column } from "../catalog/columns.js";
import { ident, sql, type Sql } from "../db/sql.js";
import type { ValueType } from "./values.js";

export const TIME_BUCKETS = ["MINUTE", "HOUR", "DAY", "WEEK", "MONTH"] as const;
export type TimeBucket = (typeof TIME_BUCKETS)[number];

/** An expression for the bucket's first instant, and the value type it is read back as. */
export interface Bucketed {
  expr: Sql;
  type: ValueType;
}

const NARROW: Record<TimeBucket, { fn: (e: Sql) => Sql; type: ValueType["type"] }> = {
  MINUTE: { fn: (e) => sql`toStartOfMinute(${e})`, type: "DATETIME" },
  HOUR: { fn: (e) => sql`toStartOfHour(${e})`, type: "DATETIME" },
  DAY: { fn: (e) => sql`toDate(${e})`, type: "DATE" },
  WEEK: { fn: (e) => sql`toMonday(${e})`, type: "DATE" },
  MONTH: { fn: (e) => sql`toStartOfMonth(${e})`, type: "DATE" },
};

// Days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar. Shifted by it, every
// supported day is a positive number, so ClickHouse's truncating intDiv and modulo act as floor
// division (they round towards zero on negative numbers). The month arithmetic is H. Hinnant's
// days_from_civil inverse ("chrono-Compatible Low-Level Date Algorithms").
const SHIFT_DAYS = 719468;
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const MINUTE_MS = 60_000;

/** The bucket of `column`'s values `expr`; `column` is DATE or DATETIME (MINUTE, HOUR: DATETIME only). */
export function bucketOf(bucket: TimeBucket, column: Pick<Column, "type" | "storage">, expr: Sql): Bucketed {
  if (column.storage === undefined) {
    const { fn, type } = NARROW[bucket];
    return { expr: fn(expr), type: { type } };
  }
  const ms = column.type === "DATETIME" ? epochMs(column, expr) : null;
  if (bucket === "HOUR" || bucket === "MINUTE") {
    // The shift is a multiple of an hour (and of a minute), so it keeps them aligned.
    const shifted = sql`(${ms!} + ${SHIFT_DAYS * DAY_MS})`;
    return {
      // The divisor as Int64: a literal 60000 is a UInt16, and modulo by it goes wrong on 18.16.
      expr: sql`(${ms!} - modulo(${shifted}, toInt64(${bucket === "HOUR" ? HOUR_MS : MINUTE_MS})))`,
      type: { type: "DATETIME", storage: "epoch" },
    };
  }
  const days =
    ms === null
      ? epochDaysOf(column, expr)
      : sql`(intDiv(${ms} + ${SHIFT_DAYS * DAY_MS}, ${DAY_MS}) - ${SHIFT_DAYS})`;
  const type: ValueType = { type: "DATE", storage: "epoch" };
  if (bucket === "DAY") return { expr: days, type };
  // 0000-03-01 was a Wednesday: (shifted + 2) mod 7 counts the days since Monday.
  if (bucket === "WEEK") return { expr: sql`(${days} - modulo(${days} + ${SHIFT_DAYS + 2}, 7))`, type };
  return { expr: monthStart(days), type };
}

function epochMs(column: Pick<Column, "storage">, expr: Sql): Sql {
  return column.storage === "wide" ? sql`toUnixTimestamp64Milli(${expr})` : expr;
}

function epochDaysOf(column: Pick<Column, "storage">, expr: Sql): Sql {
  return column.storage === "wide" ? sql`toInt32(${expr})` : expr;
}

/** Names a part of a computation: inline (the expression itself) or as a column of the SELECT. */
type Bind = (part: string, expr: Sql) => Sql;
const inline: Bind = (_part, expr) => expr;

/**
 * The civil date of `days` (days since 1970) in parts: the era of 400 years, the year of the era,
 * the day of the year from March 1 and the month from March (0–11).
 */
function civil(days: Sql, bind: Bind) {
  const z = bind("z", sql`(${days} + ${SHIFT_DAYS})`);
  const era = bind("era", sql`intDiv(${z}, 146097)`);
  const doe = bind("doe", sql`(${z} - ${era} * 146097)`);
  const yoe = bind(
    "yoe",
    sql`intDiv(${doe} - intDiv(${doe}, 1460) + intDiv(${doe}, 36524) - intDiv(${doe}, 146096), 365)`,
  );
  const doy = bind("doy", sql`(${doe} - (365 * ${yoe} + intDiv(${yoe}, 4) - intDiv(${yoe}, 100)))`);
  const mp = bind("mp", sql`intDiv(5 * ${doy} + 2, 153)`);
  return { era, yoe, doy, mp };
}

/** The first day of the month of `days` (days since 1970), as days since 1970. */
function monthStart(days: Sql): Sql {
  const { doy, mp } = civil(days, inline);
  return sql`(${days} - ${doy} + intDiv(153 * ${mp} + 2, 5))`;
}

const twoDigits = (n: Sql) => sql`substring(toString(100 + ${n}), 2, 2)`;

/**
 * The ISO text of an epoch-stored value (`value`: days since 1970 for a DATE, milliseconds for a
 * DATETIME), as the JSON representation has it (columns.ts). The arithmetic is spread over
 * columns named `<prefix>_<part>` (`columns`, for a SELECT over `value`), each naming the ones
 * before it, so the statement stays short; `iso` is the last of them.
 */
export function epochIsoText(
  type: "DATE" | "DATETIME",
  value: Sql,
  prefix: string,
): { columns: Sql[]; iso: Sql } {
  const columns: Sql[] = [];
  const bind: Bind = (part, expr) => {
    const name = ident(`${prefix}_${part}`);
    columns.push(sql`${expr} AS ${name}`);
    return sql`${name}`;
  };
  let days = value;
  let clock = sql.empty;
  if (type === "DATETIME") {
    const shifted = bind("ms", sql`(${value} + ${SHIFT_DAYS * DAY_MS})`);
    days = bind("days", sql`(intDiv(${shifted}, ${DAY_MS}) - ${SHIFT_DAYS})`);
    const second = bind("second", sql`intDiv(modulo(${shifted}, ${DAY_MS}), 1000)`);
    const [h, m, s] = [
      sql`intDiv(${second}, 3600)`,
      sql`intDiv(modulo(${second}, 3600), 60)`,
      sql`modulo(${second}, 60)`,
    ].map(twoDigits);
    clock = sql`, 'T', ${h!}, ':', ${m!}, ':', ${s!}, 'Z'`;
  }
  const { era, yoe, doy, mp } = civil(days, bind);
  const month = bind("month", sql`if(${mp} < 10, ${mp} + 3, ${mp} - 9)`);
  const day = sql`(${doy} - intDiv(153 * ${mp} + 2, 5) + 1)`;
  const year = sql`(${yoe} + ${era} * 400 + (${month} <= 2))`;
  const iso = bind(
    "iso",
    sql`concat(toString(${year}), '-', ${twoDigits(month)}, '-', ${twoDigits(day)}${clock})`,
  );
  return { columns, iso };
}
