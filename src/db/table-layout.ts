// Where ClickHouse tables live (README, "Running on a cluster"). On one server a table is what
// its name says. With CLICKHOUSE_CLUSTER set, its rows live in `<name>_local` on every shard, a
// Replicated(Replacing)MergeTree, and `<name>` is a Distributed table over those that sends each
// row to a shard by a sharding key. Reads, inserts and exports keep naming `<name>`; only DDL
// differs, and all of it is built here.
import type { ClickHouse } from "./clickhouse.js";
import { ident, join, sql, type Sql } from "./sql.js";

export interface TableEngine {
  /** ReplacingMergeTree keeps, per sorting key, the row with the highest `version` column. */
  readonly family: "MergeTree" | "ReplacingMergeTree";
  readonly version?: string;
  readonly partitionBy?: Sql;
  readonly orderBy: Sql;
  /**
   * On a cluster, rows with equal values land on the same shard. Every version of a key must
   * meet on one shard for FINAL (and LIMIT 1 BY) to stay exact.
   */
  readonly shardBy: Sql;
}

export interface TableLayout {
  /** The cluster tables are created on, or undefined for one server. */
  readonly cluster: string | undefined;
  createDatabase(database: string): Sql;
  dropDatabase(database: string): Sql;
  /** `columns` is the text between the parentheses of CREATE TABLE. Statements are idempotent. */
  createTable(database: string, table: string, columns: Sql, engine: TableEngine): Sql[];
  dropTable(database: string, table: string): Sql[];
  /** The table that stores the rows of `table`: its columns are the truth. */
  storage(table: string): string;
  /** ALTER TABLE … (ADD COLUMN, DELETE) where the rows are stored. */
  alter(database: string, table: string, action: Sql): Sql;
  /** After columns were added to the storage: makes `table` show them. */
  syncColumns(ch: ClickHouse, database: string, table: string, engine: TableEngine): Promise<void>;
  /**
   * Puts `staging`'s rows in place of `live`'s (readers see the old rows or the new ones, never a
   * half-loaded table), then drops the old rows, left under the staging name.
   */
  swap(ch: ClickHouse, database: string, live: string, staging: string, engine: TableEngine): Promise<void>;
}

/** The layout of the tables `ch` creates (its `cluster`, from CLICKHOUSE_CLUSTER). */
export function layoutOf(ch: Pick<ClickHouse, "cluster">): TableLayout {
  return ch.cluster === undefined ? ONE_SERVER : clusterLayout(ch.cluster);
}

const ENGINES = {
  MergeTree: { plain: sql`MergeTree`, replicated: sql`ReplicatedMergeTree` },
  ReplacingMergeTree: { plain: sql`ReplacingMergeTree`, replicated: sql`ReplicatedReplacingMergeTree` },
} as const;

function engineClause(engine: TableEngine, replication?: { path: string; replica: string }): Sql {
  const family = ENGINES[engine.family];
  const args = [
    ...(replication ? [sql`${replication.path}`, sql`${replication.replica}`] : []),
    ...(engine.version ? [sql`${ident(engine.version)}`] : []),
  ];
  const params = args.length ? sql`(${join(args)})` : sql.empty;
  const partition = engine.partitionBy ? sql` PARTITION BY ${engine.partitionBy}` : sql.empty;
  return sql`${replication ? family.replicated : family.plain}${params}${partition} ORDER BY ${engine.orderBy}`;
}

async function run(ch: ClickHouse, statements: readonly Sql[]): Promise<void> {
  for (const statement of statements) await ch.command(statement);
}

const ONE_SERVER: TableLayout = {
  cluster: undefined,
  createDatabase: (database) => sql`CREATE DATABASE IF NOT EXISTS ${ident(database)}`,
  dropDatabase: (database) => sql`DROP DATABASE IF EXISTS ${ident(database)}`,
  createTable: (database, table, columns, engine) => [
    sql`CREATE TABLE IF NOT EXISTS ${ident(database, table)} (${columns}) ENGINE = ${engineClause(engine)}`,
  ],
  dropTable: (database, table) => [sql`DROP TABLE IF EXISTS ${ident(database, table)}`],
  storage: (table) => table,
  alter: (database, table, action) => sql`ALTER TABLE ${ident(database, table)} ${action}`,
  syncColumns: async () => {},
  async swap(ch, database, live, staging) {
    const [from, to, tmp] = [live, staging, `${staging}_old`].map((t) => ident(database, t));
    // 18.16 has no EXCHANGE TABLES; a RENAME of several pairs is atomic.
    await ch.command(sql`RENAME TABLE ${from} TO ${tmp}, ${to} TO ${from}, ${tmp} TO ${to}`);
    await ch.command(sql`DROP TABLE IF EXISTS ${to}`);
  },
};

const local = (table: string) => `${table}_local`;

/**
 * On a cluster. ON CLUSTER statements return once every server has run them (or fail naming the
 * server that could not). What 18.16 refuses, measured: ALTER of a Distributed table ON CLUSTER
 * when the shards replicate internally (code 371), so a Distributed table whose columns must change
 * is dropped and created again (it holds no rows: inserts are synchronous); RENAME of a
 * Distributed table leaves its folder behind, which then fails DROP DATABASE, so swaps rename only
 * the shards' tables.
 */
function clusterLayout(cluster: string): TableLayout {
  const on = sql`ON CLUSTER ${ident(cluster)}`;

  const distributed = (database: string, table: string, engine: TableEngine) =>
    sql`CREATE TABLE IF NOT EXISTS ${ident(database, table)} ${on} AS ${ident(database, local(table))}
    ENGINE = Distributed(${cluster}, ${database}, ${local(table)}, ${engine.shardBy})`;

  const drop = (database: string, table: string) => sql`DROP TABLE IF EXISTS ${ident(database, table)} ${on}`;

  /** Column names and types of a table, as the server this connection reaches sees them. */
  async function columnsOf(ch: ClickHouse, database: string, table: string): Promise<string> {
    const rows = await ch.query<{ name: string; type: string }>(
      sql`SELECT name, type FROM system.columns WHERE database = ${database} AND table = ${table}`,
    );
    return rows.map((c) => `${c.name} ${c.type}`).join(", ");
  }

  const layout: TableLayout = {
    cluster,
    createDatabase: (database) => sql`CREATE DATABASE IF NOT EXISTS ${ident(database)} ${on}`,
    dropDatabase: (database) => sql`DROP DATABASE IF EXISTS ${ident(database)} ${on}`,
    createTable: (database, table, columns, engine) => [
      sql`CREATE TABLE IF NOT EXISTS ${ident(database, local(table))} ${on} (${columns})
      ENGINE = ${engineClause(engine, {
        // The path stays with the table when a swap renames it. A name is only created again
        // once its table is dropped (a retried staging table), and the drop frees the path; the
        // exception is in the README's limits.
        path: `/clickhouse/tables/{shard}/${database}/${local(table)}`,
        replica: "{replica}",
      })}`,
      distributed(database, table, engine),
    ],
    // The Distributed table first: it must never point at a table that is gone.
    dropTable: (database, table) => [drop(database, table), drop(database, local(table))],
    storage: local,
    alter: (database, table, action) => sql`ALTER TABLE ${ident(database, local(table))} ${on} ${action}`,
    async syncColumns(ch, database, table, engine) {
      const [shown, stored] = await Promise.all([
        columnsOf(ch, database, table),
        columnsOf(ch, database, local(table)),
      ]);
      if (shown === stored) return;
      // Readers of `table` fail (UNKNOWN_TABLE) between these two statements; see the README.
      await run(ch, [drop(database, table), distributed(database, table, engine)]);
    },
    async swap(ch, database, live, staging, engine) {
      const [from, to, tmp] = [live, staging, `${staging}_old`].map((t) => ident(database, local(t)));
      // Atomic on each server; the servers run it one after another (README: a moment where one
      // shard shows the new rows and another the old ones).
      await ch.command(sql`RENAME TABLE ${from} TO ${tmp}, ${to} TO ${from}, ${tmp} TO ${to} ${on}`);
      // The live Distributed table now reads the new rows; it lacks the columns a run added.
      await layout.syncColumns(ch, database, live, engine);
      await run(ch, layout.dropTable(database, staging));
    },
  };
  return layout;
}
