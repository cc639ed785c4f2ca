// The calendar arithmetic of src/records/calendar.ts, run by the engine itself (18.16 or the
// embedded 26.7) for every day from 1900-01-01 to 2299-12-31 and a time of day on each, against
// JavaScript's own calendar: the ISO text exports print and the DAY, WEEK, MONTH, HOUR and MINUTE buckets.
import { afterAll, beforeAll, expect, it } from "vitest";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, join, sql } from "../../src/db/sql.js";
import { bucketOf, epochIsoText, TIME_BUCKETS } from "../../src/records/calendar.js";
import { baseConfig } from "../support/databases.js";

const FIRST_DAY = Date.UTC(1900, 0, 1) / 86_400_000; // -25567
const DAYS = 146_097; // 400 years: to 2299-12-31

let ch: ClickHouse;
beforeAll(() => {
  ch = createClickHouse(baseConfig(), { database: "default" });
});
afterAll(() => ch?.close());

const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const iso = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

it("prints and buckets every day and a time on each as JavaScript's calendar does", async () => {
  const date = { type: "DATE" as const, storage: "epoch" as const };
  const time = { type: "DATETIME" as const, storage: "epoch" as const };
  const d = sql`_d`;
  const t = sql`_t`;
  const dayText = epochIsoText("DATE", d, "_d");
  const timeText = epochIsoText("DATETIME", t, "_t");
  // Named by bucket: MINUTE and HOUR exist for DATETIME only.
  const dateBuckets = TIME_BUCKETS.filter((b) => b !== "HOUR" && b !== "MINUTE");
  const buckets = dateBuckets.map((b) => sql`${bucketOf(b, date, d).expr} AS ${ident(`_d_${b}`)}`);
  const timeBuckets = TIME_BUCKETS.map((b) => sql`${bucketOf(b, time, t).expr} AS ${ident(`_t_${b}`)}`);
  // A time of day that differs from day to day, seconds included.
  const rows = sql`SELECT toInt32(number) + ${FIRST_DAY} AS _d,
      toInt64(_d) * 86400000 + (modulo(number * 7919, 86400)) * 1000 AS _t
    FROM numbers(${DAYS})`;
  const result = await ch.query<Record<string, string | number>>(sql`
    SELECT _d, toString(_t) AS t, _d_iso, _t_iso, ${join([...buckets, ...timeBuckets])}
    FROM (SELECT *, ${join([...dayText.columns, ...timeText.columns])} FROM (${rows}))
    ORDER BY _d`);
  expect(result).toHaveLength(DAYS);
  const monday = (ms: number) => ms - ((new Date(ms).getUTCDay() + 6) % 7) * 86_400_000;
  const monthStart = (ms: number) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth(), 1);
  const mismatches: string[] = [];
  for (const row of result) {
    const days = Number(row._d);
    const dayMs = days * 86_400_000;
    const ms = Number(row.t);
    const want = {
      _d_iso: day(dayMs),
      _t_iso: iso(ms),
      _d_DAY: days,
      _d_WEEK: monday(dayMs) / 86_400_000,
      _d_MONTH: monthStart(dayMs) / 86_400_000,
      _t_MINUTE: Math.floor(ms / 60_000) * 60_000,
      _t_HOUR: Math.floor(ms / 3_600_000) * 3_600_000,
      _t_DAY: days,
      _t_WEEK: monday(dayMs) / 86_400_000,
      _t_MONTH: monthStart(dayMs) / 86_400_000,
    };
    for (const [name, value] of Object.entries(want)) {
      const got = typeof value === "number" ? Number(row[name]) : row[name];
      if (got !== value) mismatches.push(`${day(dayMs)} ${name}: ${String(got)}, not ${String(value)}`);
    }
    if (mismatches.length > 10) break;
  }
  expect(mismatches).toEqual([]);
  expect(result[0]!._d_iso).toBe("1900-01-01");
  expect(result.at(-1)!._d_iso).toBe("2299-12-31");
}, 60_000);

it("prints the instants at the edges of each span of years as JavaScript's calendar does", async () => {
  // The ends of the spans epochIsoText moves by whole years, the epoch (which 18.16 prints as
  // 0000-00-00) and milliseconds either side of midnight.
  const days = [
    [1900, 0, 1],
    [1900, 11, 31],
    [1901, 0, 1],
    [1904, 1, 29],
    [1969, 11, 31],
    [1970, 0, 1],
    [1970, 11, 31],
    [1971, 0, 1],
    [2000, 1, 29],
    [2100, 1, 28],
    [2105, 11, 31],
    [2106, 0, 1],
    [2106, 1, 7],
    [2106, 1, 8],
    [2199, 11, 31],
    [2200, 0, 1],
    [2200, 1, 28],
    [2205, 11, 31],
    [2206, 0, 1],
    [2296, 1, 29],
    [2299, 11, 31],
  ].map(([y, m, d]) => Date.UTC(y!, m!, d!));
  const instants = days.flatMap((ms) => [
    ms,
    ms + 1,
    ms + 999,
    ms + 1000,
    ms + 86_399_999,
    ms - 1,
    ms + 43_200_000,
  ]);
  const inRange = instants.filter((ms) => ms >= Date.UTC(1900, 0, 1) && ms < Date.UTC(2300, 0, 1));
  const dayText = epochIsoText("DATE", sql`_d`, "_d");
  const timeText = epochIsoText("DATETIME", sql`_t`, "_t");
  const values = join(inRange.map((ms) => sql`(${String(ms)}, ${String(Math.floor(ms / 86_400_000))})`));
  const result = await ch.query<{ t: string; _d_iso: string; _t_iso: string }>(sql`
    SELECT toString(_t) AS t, _d_iso, _t_iso
    FROM (SELECT *, ${join([...dayText.columns, ...timeText.columns])}
      FROM (SELECT toInt64(pair.1) AS _t, toInt32(pair.2) AS _d FROM (SELECT arrayJoin([${values}]) AS pair)))
    ORDER BY _t`);
  expect(result.map((r) => [r.t, r._d_iso, r._t_iso])).toEqual(
    [...inRange].sort((a, b) => a - b).map((ms) => [String(ms), day(ms), iso(ms)]),
  );
});
