// ClickHouse schema, as numbered migrations kept in code. ClickHouse has neither transactions nor
// locks, so instead of guarding the runner each statement is idempotent (IF NOT EXISTS): a re-run
// after a crash half-way through a migration, or two processes migrating at once, is harmless.
// Never edit a released migration; add the next number.
import type { ClickHouse } from "./clickhouse.js";
import { ident, sql, type Sql } from "./sql.js";
import { layoutOf, type TableLayout } from "./table-layout.js";

export interface ClickHouseMigration {
  readonly version: number;
  readonly name: string;
  /**
   * Statements for database `db`, each safe to run again. Tables are made through `layout`, so
   * that on a cluster they are sharded (src/db/table-layout.ts).
   */
  readonly up: (db: string, layout: TableLayout) => readonly Sql[];
}

// A run's rejected rows stay on one shard: the retried rows that `LIMIT 1 BY` folds meet there.
const QUARANTINE_SHARDS = sql`cityHash64(dataset_id, run_id)`;

// All DDL must run on 18.16: no LowCardinality (needs a setting there), no DateTime64, no JSON
// or Map types; booleans would be UInt8. PARTITION BY / ORDER BY MergeTree syntax is supported.
export const clickHouseMigrations: readonly ClickHouseMigration[] = [
  {
    version: 1,
    name: "usage_events",
    up: (db, layout) =>
      layout.createTable(
        db,
        "usage_events",
        sql`
        account_id String,
        api_key_id String,
        dataset_id String,
        operation String,
        records UInt64,
        credits Int64,
        duration_ms UInt32,
        request_id String,
        occurred_at DateTime`,
        {
          family: "MergeTree",
          partitionBy: sql`toYYYYMM(occurred_at)`,
          orderBy: sql`(account_id, occurred_at)`,
          shardBy: sql`cityHash64(account_id)`,
        },
      ),
  },
  {
    version: 2,
    name: "quarantine",
    up: (db, layout) =>
      layout.createTable(
        db,
        "quarantine",
        sql`
        dataset_id String,
        run_id String,
        row_number UInt64,
        raw String,
        reasons Array(String),
        quarantined_at DateTime`,
        { family: "MergeTree", orderBy: sql`(dataset_id, run_id, row_number)`, shardBy: QUARANTINE_SHARDS },
      ),
  },
  {
    // Rejected rows name where they came from (a file of an SFTP glob, an S3 key), and pages of
    // them are keyed by (origin, row_number). Nothing wrote to the table before this version, so
    // it is recreated rather than altered: 18.16 has no ADD COLUMN IF NOT EXISTS, and a DROP/CREATE
    // pair stays safe to run again.
    version: 3,
    name: "quarantine_origin",
    up: (db, layout) => [
      ...layout.dropTable(db, "quarantine"),
      ...layout.createTable(
        db,
        "quarantine",
        sql`
        dataset_id String,
        run_id String,
        origin String,
        row_number UInt64,
        raw String,
        reasons Array(String),
        quarantined_at DateTime`,
        {
          family: "MergeTree",
          orderBy: sql`(dataset_id, run_id, origin, row_number)`,
          shardBy: QUARANTINE_SHARDS,
        },
      ),
    ],
  },
];

// ReplacingMergeTree, not TinyLog: TinyLog breaks under concurrent writers, and when two
// processes record the same version the duplicate rows collapse (reads use DISTINCT anyway).
function createMigrationsTable(db: string, layout: TableLayout): Sql[] {
  return layout.createTable(
    db,
    "schema_migrations",
    sql`
    version UInt32,
    name String,
    applied_at DateTime`,
    { family: "ReplacingMergeTree", orderBy: sql`version`, shardBy: sql`version` },
  );
}

async function appliedVersions(ch: ClickHouse, db: string): Promise<Set<number>> {
  const rows = await ch.query<{ version: number }>(
    sql`SELECT DISTINCT version FROM ${ident(db, "schema_migrations")}`,
  );
  return new Set(rows.map((row) => Number(row.version)));
}

function assertOrdered(migrations: readonly ClickHouseMigration[]): void {
  migrations.forEach((migration, i) => {
    const previous = migrations[i - 1];
    if (!Number.isInteger(migration.version) || migration.version < 1) {
      throw new Error(`ClickHouse migration "${migration.name}" has an invalid version ${migration.version}`);
    }
    if (previous && migration.version <= previous.version) {
      throw new Error(`ClickHouse migrations out of order: ${previous.version} then ${migration.version}`);
    }
  });
}

/**
 * Creates `database` if needed and applies, in order, the migrations it has not recorded yet.
 * `ch` may point at any database, including `database` itself before it exists.
 */
export async function migrateClickHouse(
  ch: ClickHouse,
  database: string,
  migrations: readonly ClickHouseMigration[] = clickHouseMigrations,
): Promise<{ applied: number[] }> {
  assertOrdered(migrations);
  // Every statement names `database`, so they can all run from `default`, which always exists.
  const admin = ch.database === "default" ? ch : ch.withDatabase("default");
  try {
    return await applyPending(admin, database, migrations);
  } finally {
    if (admin !== ch) await admin.close();
  }
}

async function applyPending(
  ch: ClickHouse,
  database: string,
  migrations: readonly ClickHouseMigration[],
): Promise<{ applied: number[] }> {
  const layout = layoutOf(ch);
  await ch.command(layout.createDatabase(database));
  for (const statement of createMigrationsTable(database, layout)) await ch.command(statement);
  const done = await appliedVersions(ch, database);
  const applied: number[] = [];
  for (const migration of migrations) {
    if (done.has(migration.version)) continue;
    for (const statement of migration.up(database, layout)) await ch.command(statement);
    await ch.insert(ident(database, "schema_migrations"), [
      { version: migration.version, name: migration.name, applied_at: new Date() },
    ]);
    applied.push(migration.version);
  }
  return { applied };
}
