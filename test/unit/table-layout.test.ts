// The DDL of both table layouts as text. That it runs, and does what it says, is tested on a real
// server (every integration test) and a real two-shard cluster (test/integration/cluster.test.ts).
import { describe, expect, it } from "vitest";
import { sql } from "../../src/db/sql.js";
import { layoutOf, type TableEngine } from "../../src/db/table-layout.js";

const ENGINE: TableEngine = {
  family: "ReplacingMergeTree",
  version: "_version",
  orderBy: sql`_key`,
  shardBy: sql`cityHash64(_key)`,
};
const LOG: TableEngine = {
  family: "MergeTree",
  partitionBy: sql`toYYYYMM(at)`,
  orderBy: sql`(account, at)`,
  shardBy: sql`cityHash64(account)`,
};

const text = (statements: { text: string }[]) => statements.map((s) => s.text.replace(/\s+/g, " ").trim());

describe("one server", () => {
  const layout = layoutOf({ cluster: undefined });

  it("creates, alters and drops the named table itself", () => {
    expect(text(layout.createTable("db", "t", sql`_key String, _version UInt64`, ENGINE))).toEqual([
      "CREATE TABLE IF NOT EXISTS `db`.`t` (_key String, _version UInt64) ENGINE = ReplacingMergeTree(`_version`) ORDER BY _key",
    ]);
    expect(text(layout.createTable("db", "log", sql`account String, at DateTime`, LOG))).toEqual([
      "CREATE TABLE IF NOT EXISTS `db`.`log` (account String, at DateTime) ENGINE = MergeTree PARTITION BY toYYYYMM(at) ORDER BY (account, at)",
    ]);
    expect(text([layout.alter("db", "t", sql`ADD COLUMN x String`)])).toEqual([
      "ALTER TABLE `db`.`t` ADD COLUMN x String",
    ]);
    expect(text(layout.dropTable("db", "t"))).toEqual(["DROP TABLE IF EXISTS `db`.`t`"]);
    expect(layout.storage("t")).toBe("t");
    expect(text([layout.createDatabase("db"), layout.dropDatabase("db")])).toEqual([
      "CREATE DATABASE IF NOT EXISTS `db`",
      "DROP DATABASE IF EXISTS `db`",
    ]);
  });
});

describe("a cluster", () => {
  const layout = layoutOf({ cluster: "main_cluster" });

  it("stores rows in replicated tables on every shard, behind a Distributed table sharded by the engine's key", () => {
    expect(text(layout.createTable("db", "t", sql`_key String, _version UInt64`, ENGINE))).toEqual([
      "CREATE TABLE IF NOT EXISTS `db`.`t_local` ON CLUSTER `main_cluster` (_key String, _version UInt64) " +
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/t_local', '{replica}', `_version`) ORDER BY _key",
      "CREATE TABLE IF NOT EXISTS `db`.`t` ON CLUSTER `main_cluster` AS `db`.`t_local` " +
        "ENGINE = Distributed('main_cluster', 'db', 't_local', cityHash64(_key))",
    ]);
    expect(text(layout.createTable("db", "log", sql`account String, at DateTime`, LOG))[0]).toBe(
      "CREATE TABLE IF NOT EXISTS `db`.`log_local` ON CLUSTER `main_cluster` (account String, at DateTime) " +
        "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/db/log_local', '{replica}') " +
        "PARTITION BY toYYYYMM(at) ORDER BY (account, at)",
    );
    expect(layout.storage("t")).toBe("t_local");
  });

  it("alters the shards' tables ON CLUSTER (ADD COLUMN, DELETE), and drops the Distributed table first", () => {
    expect(text([layout.alter("db", "t", sql`DELETE WHERE _deleted = 1`)])).toEqual([
      "ALTER TABLE `db`.`t_local` ON CLUSTER `main_cluster` DELETE WHERE _deleted = 1",
    ]);
    expect(text(layout.dropTable("db", "t"))).toEqual([
      "DROP TABLE IF EXISTS `db`.`t` ON CLUSTER `main_cluster`",
      "DROP TABLE IF EXISTS `db`.`t_local` ON CLUSTER `main_cluster`",
    ]);
    expect(text([layout.createDatabase("db"), layout.dropDatabase("db")])).toEqual([
      "CREATE DATABASE IF NOT EXISTS `db` ON CLUSTER `main_cluster`",
      "DROP DATABASE IF EXISTS `db` ON CLUSTER `main_cluster`",
    ]);
  });
});
