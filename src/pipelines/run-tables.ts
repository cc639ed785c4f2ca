// What a pipeline run does in ClickHouse besides writing records: its staging table (FULL_REFRESH),
// the atomic swap into the live table, the quarantine of rejected rows, and counting live rows.
import { DATASET_ENGINE, LIVE, liveRows } from "../catalog/dataset-table.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { ident, sql } from "../db/sql.js";
import { layoutOf } from "../db/table-layout.js";
import {
  decodeCursor,
  encodeCursor,
  pageRequest,
  type Page,
  type PageArgs,
  type PageLimits,
} from "../pagination.js";
import { isoSeconds } from "../records/values.js";

export interface RejectedRow {
  runId: string;
  origin: string;
  rowNumber: number;
  raw: string;
  reasons: string[];
}

/** The staging table of one run: derived from the run, so a restarted run finds (and drops) it. */
export function stagingTableName(liveTable: string, runId: string): string {
  return `${liveTable}_stage_${runId.replaceAll("-", "")}`;
}

/**
 * The text tables a server parses one run's CSV file into (pipelines/engine; a large file goes in
 * as two parts at once): derived from the run like the staging table, so a retry or the
 * dead-letter handler finds them. Memory tables: left behind, they would hold the file in the
 * server's memory until a restart.
 */
export function rawTableNames(liveTable: string, runId: string): string[] {
  const name = `${liveTable}_raw_${runId.replaceAll("-", "")}`;
  return [name, `${name}_2`];
}

/**
 * Puts the staging table in place of the live one in one statement (readers see the old table or
 * the new one, never a half-loaded one), then drops the old data left under the staging name.
 */
export async function swapIntoLive(
  ch: ClickHouse,
  database: string,
  liveTable: string,
  stagingTable: string,
): Promise<void> {
  await layoutOf(ch).swap(ch, database, liveTable, stagingTable, DATASET_ENGINE);
}

export async function countLiveRows(ch: ClickHouse, database: string, table: string): Promise<number> {
  const [row] = await ch.query<{ n: string }>(
    sql`SELECT toString(count()) AS n FROM ${liveRows(database, table)} WHERE ${LIVE}`,
  );
  return Number(row?.n ?? 0);
}

export async function quarantine(
  ch: ClickHouse,
  database: string,
  datasetId: string,
  rows: readonly RejectedRow[],
  now = new Date(),
): Promise<void> {
  const at = isoSeconds(now);
  await ch.insert(
    ident(database, "quarantine"),
    rows.map((r) => ({
      dataset_id: datasetId,
      run_id: r.runId,
      origin: r.origin,
      row_number: r.rowNumber,
      raw: r.raw,
      reasons: r.reasons,
      quarantined_at: at,
    })),
  );
}

/**
 * A page of a run's rejected rows by (origin, row number). An attempt that was retried wrote its
 * rows again: `LIMIT 1 BY` shows each row once.
 */
export async function rejectedRowsPage(
  ch: ClickHouse,
  database: string,
  datasetId: string,
  runId: string,
  args: PageArgs,
  limits: PageLimits,
): Promise<Page<RejectedRow>> {
  const request = pageRequest(args, limits);
  const forward = request.direction === "forward";
  const cursor = forward ? request.after : request.before;
  let range = sql`1`;
  if (cursor) {
    const [origin, rowNumber] = decodeCursor(cursor, 2, forward ? "after" : "before");
    if (typeof origin !== "string" || typeof rowNumber !== "number") throw new TypeError("unreachable");
    range = forward
      ? sql`(origin > ${origin} OR (origin = ${origin} AND row_number > ${rowNumber}))`
      : sql`(origin < ${origin} OR (origin = ${origin} AND row_number < ${rowNumber}))`;
  }
  const order = forward ? sql`origin ASC, row_number ASC` : sql`origin DESC, row_number DESC`;
  const rows = await ch.query<{ origin: string; row_number: string; raw: string; reasons: string[] }>(sql`
    SELECT origin, row_number, raw, reasons
    FROM ${ident(database, "quarantine")}
    WHERE dataset_id = ${datasetId} AND run_id = ${runId} AND ${range}
    ORDER BY ${order}
    LIMIT 1 BY origin, row_number
    LIMIT ${request.size + 1}`);
  const more = rows.length > request.size;
  const items = rows.slice(0, request.size).map((r) => ({
    runId,
    origin: r.origin,
    rowNumber: Number(r.row_number),
    raw: r.raw,
    reasons: r.reasons,
  }));
  if (!forward) items.reverse();
  return {
    items,
    cursors: items.map((r) => encodeCursor([r.origin, r.rowNumber])),
    hasNextPage: forward ? more : false,
    hasPreviousPage: forward ? false : more,
  };
}
