// Each dataset's records live in a ClickHouse table of their own (docs/architecture.md §5): the typed
// columns of its schema plus our bookkeeping columns. ReplacingMergeTree keeps the row with the
// highest _version per _key; readers use FINAL, and skip rows marked _deleted.
import { ident, join, sql, type Identifier, type Sql } from "../db/sql.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { layoutOf, type TableEngine } from "../db/table-layout.js";
import { clickHouseType, type Column } from "./columns.js";

/** Columns every dataset table has besides its own, as rows are written; their names start with `_`. */
export const SYSTEM_COLUMNS = {
  _key: sql`String`,
  _version: sql`UInt64`,
  _run_id: sql`String`,
  _ingested_at: sql`DateTime`,
  _deleted: sql`UInt8`,
} as const;

/** On a cluster, rows are sharded by key: every version of a record meets on one shard for FINAL. */
export const DATASET_ENGINE: TableEngine = {
  family: "ReplacingMergeTree",
  version: "_version",
  orderBy: sql`_key`,
  shardBy: sql`cityHash64(_key)`,
};

export function tableNameFor(datasetId: string): string {
  return `ds_${datasetId.replaceAll("-", "")}`;
}

export function tableRef(database: string, tableName: string): Identifier {
  return ident(database, tableName);
}

/**
 * The types the bookkeeping columns are stored in on an engine of this major version. A run's id
 * is the same on every row the run wrote: as LowCardinality (from 20; 18.16 has it only as an
 * experiment) a table stores a dictionary of a few ids and a byte or two per row, where String
 * sorts, compresses and writes its 36 bytes on every row (a tenth of the engine load of a
 * 1,000,000-row file). Tables made before keep String; writes cast to either.
 */
function storedSystemColumns(major: number): Record<keyof typeof SYSTEM_COLUMNS, Sql> {
  return major >= 20 ? { ...SYSTEM_COLUMNS, _run_id: sql`LowCardinality(String)` } : SYSTEM_COLUMNS;
}

function columnDefinitions(columns: readonly Column[], major: number): Sql[] {
  return [
    ...columns.map((c) => sql`${ident(c.name)} ${clickHouseType(c)}`),
    ...Object.entries(storedSystemColumns(major)).map(([name, type]) => sql`${ident(name)} ${type}`),
  ];
}

export async function createDatasetTable(
  ch: ClickHouse,
  database: string,
  tableName: string,
  columns: readonly Column[],
): Promise<void> {
  const layout = layoutOf(ch);
  const { major } = await ch.version();
  for (const statement of layout.createTable(
    database,
    tableName,
    join(columnDefinitions(columns, major)),
    DATASET_ENGINE,
  )) {
    await ch.command(statement);
  }
}

/**
 * Adds columns the table lacks (existing rows read them as NULL, or the type's zero). 18.16 has
 * no `ADD COLUMN IF NOT EXISTS`, so the table's columns are looked up first; that keeps a retry
 * after a partial failure harmless.
 */
export async function addDatasetColumns(
  ch: ClickHouse,
  database: string,
  tableName: string,
  columns: readonly Column[],
): Promise<void> {
  const layout = layoutOf(ch);
  const existing = await ch.query<{ name: string }>(
    sql`SELECT name FROM system.columns WHERE database = ${database} AND table = ${layout.storage(tableName)}`,
  );
  const have = new Set(existing.map((c) => c.name));
  for (const c of columns.filter((column) => !have.has(column.name))) {
    await ch.command(
      layout.alter(database, tableName, sql`ADD COLUMN ${ident(c.name)} ${clickHouseType(c)}`),
    );
  }
  await layout.syncColumns(ch, database, tableName, DATASET_ENGINE);
}

/** The FROM clause every reader uses: the latest version of each live row. */
export function liveRows(database: string, tableName: string): Sql {
  return sql`${tableRef(database, tableName)} FINAL`;
}

export const LIVE = sql`_deleted = 0`;

export async function dropDatasetTable(ch: ClickHouse, database: string, tableName: string): Promise<void> {
  for (const statement of layoutOf(ch).dropTable(database, tableName)) await ch.command(statement);
}
