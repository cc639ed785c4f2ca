// Usage events in ClickHouse (`usage_events`, clickhouse-migrations.ts): one row per billed
// request, written after the request, and the usage reports built from them. The ledger in
// PostgreSQL is what the account paid; these rows are what it did, at request granularity.
import { badInput } from "../errors.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { ident, join, sql, type Sql } from "../db/sql.js";

export interface UsageEvent {
  accountId: string;
  apiKeyId?: string | null;
  datasetId: string;
  /** The operation, e.g. "records", "aggregate", "record", "export". */
  operation: string;
  records: number;
  credits: bigint | number;
  durationMs: number;
  requestId: string;
  /** Defaults to now. */
  at?: Date;
}

export type UsageGroupBy = "DAY" | "DATASET" | "OPERATION";

export interface UsageReportRow {
  /** The day (YYYY-MM-DD, UTC), the dataset id or the operation. */
  group: string;
  requests: number;
  records: number;
  credits: number;
}

const UINT32_MAX = 2 ** 32 - 1;

export async function recordUsage(ch: ClickHouse, event: UsageEvent): Promise<void> {
  await recordUsageBatch(ch, [event]);
}

/** One insert for many events (what UsageRecorder sends). */
export async function recordUsageBatch(ch: ClickHouse, events: readonly UsageEvent[]): Promise<void> {
  await insertUsageRows(ch, events.map(usageRow));
}

export type UsageRow = ReturnType<typeof usageRow>;

export async function insertUsageRows(ch: ClickHouse, rows: readonly UsageRow[]): Promise<void> {
  if (rows.length > 0) await ch.insert(ident(ch.database, "usage_events"), rows);
}

/** The usage_events row of an event; throws on values the table cannot hold. */
export function usageRow(event: UsageEvent) {
  if (!Number.isSafeInteger(event.records) || event.records < 0) {
    throw new RangeError(`records must be a non-negative integer, got ${event.records}`);
  }
  if (!Number.isFinite(event.durationMs)) throw new RangeError("durationMs must be a finite number");
  return {
    account_id: event.accountId,
    api_key_id: event.apiKeyId ?? "",
    dataset_id: event.datasetId,
    operation: event.operation,
    records: event.records,
    credits: BigInt(event.credits),
    // Durations come from performance.now(): fractional, and in theory out of UInt32's range.
    duration_ms: Math.min(Math.max(Math.round(event.durationMs), 0), UINT32_MAX),
    request_id: event.requestId,
    // Stored to the second: the column is a DateTime (18.16 has no DateTime64).
    occurred_at: event.at ?? new Date(),
  };
}

// Fixed expressions chosen by the enum: nothing from the caller reaches the SQL text but values.
// Days are UTC whatever the server's time zone.
const GROUP_EXPRESSIONS: Record<UsageGroupBy, Sql> = {
  DAY: sql`toString(toDate(occurred_at, 'UTC'))`,
  DATASET: sql`dataset_id`,
  OPERATION: sql`operation`,
};

interface ReportRow {
  grp: string;
  requests: string | number;
  total_records: string | number;
  total_credits: string | number;
}

/**
 * The account's usage in [from, to), one row per day, dataset or operation, ordered by group.
 * Counts come back as numbers (exact up to 2^53).
 */
export async function usageReport(
  ch: ClickHouse,
  accountId: string,
  range: { from: Date; to: Date; groupBy: UsageGroupBy },
): Promise<UsageReportRow[]> {
  const group = GROUP_EXPRESSIONS[range.groupBy];
  if (!group) throw badInput(`Cannot group usage by ${String(range.groupBy)}`, { field: "groupBy" });
  const { from, to } = range;
  if (Number.isNaN(from.getTime()) || Number.isNaN(to.getTime()) || from.getTime() > to.getTime()) {
    throw badInput("The usage range needs a valid `from` no later than `to`", { field: "from" });
  }
  // Aliases differ from the column names: on 18.16 `sum(records) AS records` makes later
  // references to `records` resolve to the aggregate.
  const rows = await ch.query<ReportRow>(sql`
    SELECT ${group} AS grp, count() AS requests, sum(records) AS total_records, sum(credits) AS total_credits
    FROM ${ident(ch.database, "usage_events")}
    WHERE account_id = ${accountId} AND occurred_at >= ${from} AND occurred_at < ${to}
    GROUP BY grp
    ORDER BY grp`);
  return rows.map((row) => ({
    group: row.grp,
    requests: Number(row.requests),
    records: Number(row.total_records),
    credits: Number(row.total_credits),
  }));
}

/** One line of an account's usage log: what one request did to one dataset. */
export interface UsageLogLine {
  at: Date;
  requestId: string;
  apiKeyId: string | null;
  datasetId: string;
  operation: string;
  records: number;
  credits: number;
  durationMs: number;
}

export interface UsageLogFilter {
  apiKeyId?: string | null;
  datasetId?: string | null;
}

interface LogRow {
  at_s: string | number;
  request_id: string;
  dataset_id: string;
  operation: string;
  api_key_id: string;
  total_records: string | number;
  total_credits: string | number;
  total_ms: string | number;
}

/** The log's sort key, newest first: (second, request, dataset, operation, key). */
export type UsageLogKey = readonly [number, string, string, string, string];

/**
 * A page of the account's usage log, newest first, after `after` (a key from a previous page).
 * One line per request, dataset, operation and key (a request that read one dataset twice the same
 * way shows once, summed), so the key is unique and keyset paging never skips or repeats a line.
 */
export async function usageLogPage(
  ch: ClickHouse,
  accountId: string,
  filter: UsageLogFilter,
  size: number,
  after: UsageLogKey | null,
): Promise<{ lines: UsageLogLine[]; keys: UsageLogKey[]; hasNextPage: boolean }> {
  const conditions = [sql`account_id = ${accountId}`];
  if (filter.apiKeyId) conditions.push(sql`api_key_id = ${filter.apiKeyId}`);
  if (filter.datasetId) conditions.push(sql`dataset_id = ${filter.datasetId}`);
  if (after) conditions.push(beforeKey(after));
  const rows = await ch.query<LogRow>(sql`
    SELECT toUInt32(occurred_at) AS at_s, request_id, dataset_id, operation, api_key_id,
      sum(records) AS total_records, sum(credits) AS total_credits, sum(duration_ms) AS total_ms
    FROM ${ident(ch.database, "usage_events")}
    WHERE ${join(conditions, " AND ")}
    GROUP BY occurred_at, request_id, dataset_id, operation, api_key_id
    ORDER BY at_s DESC, request_id DESC, dataset_id DESC, operation DESC, api_key_id DESC
    LIMIT ${size + 1}`);
  const page = rows.slice(0, size);
  return {
    lines: page.map((row) => ({
      at: new Date(Number(row.at_s) * 1000),
      requestId: row.request_id,
      apiKeyId: row.api_key_id === "" ? null : row.api_key_id,
      datasetId: row.dataset_id,
      operation: row.operation,
      records: Number(row.total_records),
      credits: Number(row.total_credits),
      durationMs: Number(row.total_ms),
    })),
    keys: page.map((row) => [
      Number(row.at_s),
      row.request_id,
      row.dataset_id,
      row.operation,
      row.api_key_id,
    ]),
    hasNextPage: rows.length > size,
  };
}

// Rows strictly after `key` in the log's order (descending on every column), spelled out column
// by column: 18.16 cannot compare tuples.
function beforeKey(key: UsageLogKey): Sql {
  const [seconds, requestId, datasetId, operation, apiKeyId] = key;
  const at = new Date(seconds * 1000);
  return sql`(occurred_at < ${at} OR (occurred_at = ${at} AND (request_id < ${requestId}
    OR (request_id = ${requestId} AND (dataset_id < ${datasetId}
    OR (dataset_id = ${datasetId} AND (operation < ${operation}
    OR (operation = ${operation} AND api_key_id < ${apiKeyId}))))))))`;
}
