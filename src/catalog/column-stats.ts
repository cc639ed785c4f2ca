// Column statistics for the catalogue: per column, how many values are null, the smallest and
// largest, and an estimate of how many differ, computed by ClickHouse in one pass over the live
// rows after each successful run (pipelines/pipeline.runner.ts). `uniq` is ClickHouse's adaptive
// estimate (exact below 65,536 values, within about 1% above), on 18.16 and current versions.
import type { ClickHouse } from "../db/clickhouse.js";
import { ident, join, sql, type Sql } from "../db/sql.js";
import { fromTransport, transportExpr } from "../records/values.js";
import type { Column } from "./columns.js";
import { LIVE, liveRows } from "./dataset-table.js";

export interface ColumnStats {
  name: string;
  nulls: number;
  /** In the form a record's value takes (records.reader.ts); null when the column holds no value. */
  min: string | null;
  max: string | null;
  /** Estimated count of distinct non-null values. */
  distinct: number;
}

/** One SELECT computing every column's figures; the aliases are positional (c0_nulls...). */
export function columnStatsQuery(database: string, tableName: string, columns: readonly Column[]): Sql {
  const figures = columns.flatMap((column, i) => {
    const c = ident(column.name);
    return [
      sql`countIf(isNull(${c})) AS ${ident(`c${i}_nulls`)}`,
      // As record values travel: epoch and wide dates as numbers, decimals exact (values.ts).
      sql`${transportExpr(column, sql`min(${c})`)} AS ${ident(`c${i}_min`)}`,
      sql`${transportExpr(column, sql`max(${c})`)} AS ${ident(`c${i}_max`)}`,
      sql`uniq(${c}) AS ${ident(`c${i}_distinct`)}`,
    ];
  });
  return sql`SELECT count() AS total, ${join([...figures])} FROM ${liveRows(database, tableName)} WHERE ${LIVE}`;
}

/** Reads the query's one row into per-column figures. */
export function toColumnStats(columns: readonly Column[], row: Record<string, unknown>): ColumnStats[] {
  const total = Number(row.total ?? 0);
  return columns.map((column, i) => {
    const nulls = Number(row[`c${i}_nulls`] ?? 0);
    const empty = total === 0 || nulls === total;
    const text = (v: unknown) => {
      if (empty || v === null || v === undefined) return null;
      const value = fromTransport(column, v);
      return value === null ? null : String(value);
    };
    return {
      name: column.name,
      nulls,
      min: text(row[`c${i}_min`]),
      max: text(row[`c${i}_max`]),
      distinct: Number(row[`c${i}_distinct`] ?? 0),
    };
  });
}

export async function computeColumnStats(
  ch: ClickHouse,
  database: string,
  tableName: string,
  columns: readonly Column[],
): Promise<ColumnStats[]> {
  if (columns.length === 0) return [];
  const [row] = await ch.query<Record<string, unknown>>(columnStatsQuery(database, tableName, columns));
  return toColumnStats(columns, row ?? {});
}
