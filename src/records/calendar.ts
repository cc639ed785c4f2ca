// The calendar in SQL for DATE and DATETIME columns, for each way they are stored
// (catalog/columns.ts TimeStorage): the time buckets of aggregates (MINUTE, HOUR, DAY, WEEK, MONTH) and
// the ISO text of epoch-stored values for exports. Pure.
//
// Wide and epoch columns are handled by arithmetic on their days or milliseconds since 1970, not
// by the engine's date functions: 18.16 has none for integers before 1970, and on current
// servers toStartOfMonth and toMonday of a Date32 return a Date, which clamps 1969 to 1970
// unless a setting says otherwise (measured on 26.7).
import type { Column } from "../catalog/columns.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
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

/**
 * The first day of the month of `days` (days since 1970), as days since 1970: the civil date in
 * parts (the era of 400 years, the day of the era, the year of the era, the day of the year from
 * March 1 and the month from March, 0–11), then back to its first day.
 */
function monthStart(days: Sql): Sql {
  const z = sql`(${days} + ${SHIFT_DAYS})`;
  const era = sql`intDiv(${z}, 146097)`;
  const doe = sql`(${z} - ${era} * 146097)`;
  const yoe = sql`intDiv(${doe} - intDiv(${doe}, 1460) + intDiv(${doe}, 36524) - intDiv(${doe}, 146096), 365)`;
  const doy = sql`(${doe} - (365 * ${yoe} + intDiv(${yoe}, 4) - intDiv(${yoe}, 100)))`;
  const mp = sql`intDiv(5 * ${doy} + 2, 153)`;
  return sql`(${days} - ${doy} + intDiv(153 * ${mp} + 2, 5))`;
}

/**
 * The ISO text of an epoch-stored value (`value`: days since 1970 for a DATE, milliseconds for a
 * DATETIME), as the JSON representation has it (columns.ts), from 1900-01-01 to 2299-12-31. The
 * engine's own Date and DateTime print it: they reach 1970-01-01 to 2106-02-07 only, so a day
 * outside is first moved by whole years to one with the same calendar (a year of the same length
 * inside that range, the same number of days away for every day of the span) and the year put
 * back in the text. Printing is half the cost of the civil-date arithmetic on 18.16, which has no
 * faster way. The parts are columns named `<prefix>_<part>` (`columns`, for a SELECT over
 * `value`), each naming the ones before it, so the statement stays short; `iso` is the last.
 */
export function epochIsoText(
  type: "DATE" | "DATETIME",
  value: Sql,
  prefix: string,
): { columns: Sql[]; iso: Sql } {
  const columns: Sql[] = [];
  const bind = (part: string, expr: Sql): Sql => {
    const name = ident(`${prefix}_${part}`);
    columns.push(sql`${expr} AS ${name}`);
    return sql`${name}`;
  };
  // Whole days by a division in doubles: exact for every millisecond of the range (the quotient
  // is an integer or at least 1/86,400,000 from one, far above a double's error there).
  const days = type === "DATE" ? value : bind("days", sql`toInt32(floor(${value} / ${DAY_MS}))`);
  const span = (pick: (s: YearShift) => number) =>
    sql`multiIf(${join(YEAR_SHIFTS.map((s) => (s.before === null ? sql`${pick(s)}` : sql`${days} < ${s.before}, ${pick(s)}`)))})`;
  const moved = bind("moved", sql`toUInt16(${days} + ${span((s) => s.days)})`);
  const year = sql`toString(toYear(toDate(${moved})) - ${span((s) => s.years)})`;
  if (type === "DATE")
    return { columns, iso: bind("iso", sql`concat(${year}, substring(toString(toDate(${moved})), 5))`) };
  const second = sql`intDiv(toUInt32(${value} - ${days} * ${DAY_MS}), 1000)`;
  // "-MM-DDThh:mm:ssZ" of the moved day at this time of day, written at once by formatDateTime
  // (the same format on 18.16 and current engines) rather than cut out of its toString and
  // joined again: 18.16's export statements 4-6% faster (bench/README.md, "Export, session 10").
  const rest = sql`formatDateTime(toDateTime(toUInt32(${moved}) * 86400 + ${second}), '-%m-%dT%TZ', 'UTC')`;
  return { columns, iso: bind("iso", sql`concat(${year}, ${rest})`) };
}

interface YearShift {
  /** The span ends before this day (days since 1970); null: the last span. */
  before: number | null;
  /** Days added to move a day of the span into 1970–2105, and the years that adds. */
  days: number;
  years: number;
}

// Each span's years and the years they move to have the same length year by year (1900 and 2100
// are not leap years, 1901–1969 and 1985–2053 follow the four-year rule throughout, …), so one
// number of days moves every day of a span; test/integration/calendar.clickhouse.test.ts prints
// every day of the 400 years.
const YEAR_SHIFTS: readonly YearShift[] = [
  { before: -25202, days: 73049, years: 200 }, // 1900 → 2100
  { before: 0, days: 30681, years: 84 }, // 1901–1969 → 1985–2053
  // 18.16 prints day 0 (and second 0) as 0000-00-00.
  { before: 365, days: 10227, years: 28 }, // 1970 → 1998
  { before: 49673, days: 0, years: 0 }, // 1971–2105
  { before: 84006, days: -40907, years: -112 }, // 2106–2199 → 1994–2087
  { before: 86197, days: -36524, years: -100 }, // 2200–2205 → 2100–2105
  { before: null, days: -81814, years: -224 }, // 2206–2299 → 1982–2075
];
