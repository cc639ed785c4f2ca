// Cluster mode end to end (README, "Running on a cluster"): the real app with CLICKHOUSE_URL on
// shard 01 of the two-shard 18.16 cluster that `scripts/services.sh cluster` starts and
// CLICKHOUSE_CLUSTER set. A dataset is loaded from a file by a pipeline, read by cursor,
// aggregated, exported, corrected and replaced by a full refresh; what each shard stores is
// checked on that shard's own server.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, sql } from "../../src/db/sql.js";
import {
  AddDatasetColumnsDocument,
  AggregateDocument,
  CreatePipelineDocument,
  DeleteRecordsDocument,
  RecordsDocument,
  SetAccountPlanDocument,
  UpsertRecordsDocument,
  type RecordOrderInput,
  type RecordsQuery,
} from "../generated/graphql.js";
import { testCluster } from "../support/cluster.js";
import { baseConfig } from "../support/databases.js";
import { ok, publishing, type Dataset } from "../support/publishing.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let shards: ClickHouse[] = [];
let root: string;
let database: string;
let dataset: Dataset;
let table: string;
let pipelineId: string;

type Values = Record<string, unknown>;

const HEADER = "id,name,category,qty";
/** The first load: ids 1..1000 and one row the id cast rejects. */
const FIRST_FILE = [
  HEADER,
  ...Array.from({ length: 1000 }, (_, i) => `${i + 1},first-${i + 1},c${(i + 1) % 5},${i + 1}`),
  "not-a-number,bad,c0,1",
].join("\n");
/** The full refresh: ids 501..1100, and a field the dataset does not have yet. */
const SECOND_FILE = [
  `${HEADER},region`,
  ...Array.from(
    { length: 600 },
    (_, i) => `${i + 501},second-${i + 501},c${(i + 501) % 5},${i + 501},r${i % 3}`,
  ),
].join("\n");

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

beforeAll(async () => {
  const cluster = testCluster();
  root = await mkdtemp(join(tmpdir(), "datahus-cluster-"));
  stack = await startStack(
    {
      CLICKHOUSE_URL: cluster.url,
      CLICKHOUSE_CLUSTER: cluster.name,
      FILE_SOURCE_ROOT: root,
      PIPELINE_BATCH_ROWS: "300",
    },
    { worker: true },
  );
  database = stack.app.config.CLICKHOUSE_DATABASE;
  shards = cluster.shardUrls.map((url) =>
    createClickHouse(baseConfig({ CLICKHOUSE_URL: url }), { database: "default" }),
  );
  publisher = await stack.signup("Cluster Publisher", "PUBLISHER");
  const admin = await stack.admin();
  ok(
    await stack.graphql(
      SetAccountPlanDocument,
      { accountId: publisher.accountId, plan: "PRO" },
      admin.headers,
    ),
  );
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await Promise.all(shards.map((s) => s.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

/** Table name → engine, as each shard's own server has them. */
async function tablesOnShards(prefix: string): Promise<Record<string, string>[]> {
  return Promise.all(
    shards.map(async (shard) => {
      const rows = await shard.query<{ name: string; engine: string }>(
        sql`SELECT name, engine FROM system.tables WHERE database = ${database} AND name LIKE ${`${prefix}%`}`,
      );
      return Object.fromEntries(rows.map((r) => [r.name, r.engine]));
    }),
  );
}

/** Per shard: the live rows it stores, and how many of them another shard's key hash owns. */
async function rowsOnShards(): Promise<{ rows: number; misplaced: number }[]> {
  return Promise.all(
    shards.map(async (shard, i) => {
      const [row] = await shard.query<{ rows: string; misplaced: string }>(sql`
        SELECT toString(count()) AS rows,
               toString(countIf(cityHash64(_key) % ${shards.length} != ${i})) AS misplaced
        FROM ${ident(database, `${table}_local`)} FINAL WHERE _deleted = 0`);
      return { rows: Number(row!.rows), misplaced: Number(row!.misplaced) };
    }),
  );
}

/** Every record, page after page of `size` by cursor, in the order asked. */
async function readAll(orderBy?: RecordOrderInput[], size = 100): Promise<Values[]> {
  const values: Values[] = [];
  let after: string | null = null;
  for (let page = 0; page < 50; page++) {
    const res: GraphQLResponse<RecordsQuery> = await stack.graphql(
      RecordsDocument,
      { slug: dataset.slug, first: size, after, orderBy },
      publisher.headers,
    );
    const records = ok(res).dataset!.records;
    values.push(...records.edges.map((e) => e.node.values as Values));
    if (!records.pageInfo.hasNextPage) return values;
    after = records.pageInfo.endCursor ?? null;
  }
  throw new Error("more than 50 pages");
}

const ids = (values: Values[]) => values.map((v) => Number(v.id));
const sorted = (numbers: number[]) => [...numbers].sort((a, b) => a - b);

describe("on a two-shard cluster", () => {
  it("creates the migrations' and a dataset's tables on every shard, replicated, behind Distributed tables", async () => {
    const flow = publishing(stack, publisher);
    dataset = await flow.dataset([
      { name: "id", type: "INT64", nullable: false },
      { name: "name", type: "STRING", nullable: false },
      { name: "category", type: "STRING", nullable: false },
      { name: "qty", type: "INT64", nullable: false },
    ]);
    table = (await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { id: dataset.rawId } }))
      .tableName;

    for (const tables of await tablesOnShards("")) {
      expect(tables).toEqual({
        schema_migrations: "Distributed",
        schema_migrations_local: "ReplicatedReplacingMergeTree",
        usage_events: "Distributed",
        usage_events_local: "ReplicatedMergeTree",
        quarantine: "Distributed",
        quarantine_local: "ReplicatedMergeTree",
        [table]: "Distributed",
        [`${table}_local`]: "ReplicatedReplacingMergeTree",
      });
    }
  });

  it("loads a file through a pipeline: rows land on both shards, each on the shard its key hashes to", async () => {
    await writeFile(join(root, "cluster.csv"), FIRST_FILE);
    const flow = publishing(stack, publisher);
    const source = await flow.source("FILE", { path: "cluster.csv" });
    const res = await stack.graphql(
      CreatePipelineDocument,
      {
        input: {
          sourceId: source,
          datasetId: dataset.id,
          name: "cluster",
          mode: "FULL_REFRESH",
          newFieldPolicy: "ADD_COLUMN",
          steps: [],
        },
      },
      publisher.headers,
    );
    pipelineId = ok(res).createPipeline.id;
    const run = await flow.finished(await flow.run(pipelineId), 60_000);
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 1001, rowsWritten: 1000, rowsRejected: 1 });
    // The quarantine is a Distributed table too.
    expect(run.rejectedRows.edges.map((e) => e.node.raw)).toEqual([expect.stringContaining("not-a-number")]);
    expect(await flow.state(dataset)).toMatchObject({ version: 1, rowCount: 1000 });

    const perShard = await rowsOnShards();
    expect(perShard.every((s) => s.rows > 300 && s.misplaced === 0)).toBe(true);
    expect(perShard.reduce((n, s) => n + s.rows, 0)).toBe(1000);
  });

  it("reads every row exactly once by cursor, in key order and in a column's order", async () => {
    const byKey = await readAll();
    expect(byKey).toHaveLength(1000);
    expect(sorted(ids(byKey))).toEqual(range(1, 1000));

    const byQty = await readAll([{ column: "qty", direction: "DESC" }], 70);
    expect(ids(byQty)).toEqual(range(1, 1000).reverse());

    // Ties broken by key: within a category the order stays stable across pages and shards.
    const byCategory = await readAll([{ column: "category", direction: "ASC" }], 90);
    expect(sorted(ids(byCategory))).toEqual(range(1, 1000));
    const categories = byCategory.map((v) => String(v.category));
    expect(categories).toEqual([...categories].sort());
  });

  it("aggregates and exports across the shards", async () => {
    const res = await stack.graphql(
      AggregateDocument,
      {
        slug: dataset.slug,
        groupBy: [{ column: "category" }],
        metrics: [{ fn: "COUNT" }, { fn: "SUM", column: "qty", alias: "total" }],
        first: 10,
      },
      publisher.headers,
    );
    const groups = ok(res).dataset!.aggregate.edges.map((e) => e.node);
    const expected = ["c0", "c1", "c2", "c3", "c4"].map((category, c) => ({
      group: { category },
      metrics: {
        count: 200,
        total: range(1, 1000)
          .filter((id) => id % 5 === c)
          .reduce((a, b) => a + b, 0),
      },
    }));
    expect(
      groups.map((g) => ({
        group: g.group,
        metrics: { count: Number(g.metrics.count), total: Number(g.metrics.total) },
      })),
    ).toEqual(expected);

    const exported = await fetch(`${stack.url}/api/v1/data/export?dataset=${dataset.slug}&format=ndjson`, {
      headers: publisher.headers,
    });
    expect(exported.status).toBe(200);
    const lines = (await exported.text())
      .split("\n")
      .filter(Boolean)
      .map((line) => JSON.parse(line) as Values);
    expect(lines).toHaveLength(1000);
    expect(sorted(ids(lines))).toEqual(range(1, 1000));
  });

  it("keeps count() FINAL exact when corrections write new versions of existing keys", async () => {
    const changed = range(1, 10).map((id) => ({ id, name: `fixed-${id}`, category: "c9", qty: 0 }));
    const upserted = await stack.graphql(
      UpsertRecordsDocument,
      { datasetId: dataset.id, records: [...changed, { id: 5000, name: "new", category: "c9", qty: 0 }] },
      publisher.headers,
    );
    expect(ok(upserted).upsertRecords).toMatchObject({ changedRows: 11, dataset: { rowCount: 1001 } });

    const deleted = await stack.graphql(
      DeleteRecordsDocument,
      { datasetId: dataset.id, keys: [{ id: 11 }, { id: 12 }, { id: 5000 }] },
      publisher.headers,
    );
    expect(ok(deleted).deleteRecords).toMatchObject({ changedRows: 3, dataset: { rowCount: 998 } });

    const all = await readAll();
    expect(sorted(ids(all))).toEqual([...range(1, 10), ...range(13, 1000)]);
    expect(all.filter((v) => v.category === "c9").map((v) => v.name)).toHaveLength(10);
    const perShard = await rowsOnShards();
    expect(perShard.reduce((n, s) => n + s.rows, 0)).toBe(998);
    expect(perShard.every((s) => s.misplaced === 0)).toBe(true);
  });

  it("replaces the dataset with a full refresh on every shard, with a column the run added", async () => {
    await writeFile(join(root, "cluster.csv"), SECOND_FILE);
    const flow = publishing(stack, publisher);
    const run = await flow.finished(await flow.run(pipelineId), 60_000);
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsWritten: 600, newFields: ["region"] });
    expect(await flow.state(dataset)).toMatchObject({ version: 4, rowCount: 600 });

    const all = await readAll([{ column: "id", direction: "ASC" }], 100);
    expect(ids(all)).toEqual(range(501, 1100));
    expect(all.every((v) => String(v.name).startsWith("second-"))).toBe(true);
    expect(all.map((v) => v.region)).toEqual(range(0, 599).map((i) => `r${i % 3}`));

    const perShard = await rowsOnShards();
    expect(perShard.every((s) => s.rows > 150 && s.misplaced === 0)).toBe(true);
    expect(perShard.reduce((n, s) => n + s.rows, 0)).toBe(600);
    // No staging table is left behind on any shard.
    for (const tables of await tablesOnShards(table)) {
      expect(tables).toEqual({ [table]: "Distributed", [`${table}_local`]: "ReplicatedReplacingMergeTree" });
    }
  });

  it("adds a column to the live dataset on every shard", async () => {
    const res = await stack.graphql(
      AddDatasetColumnsDocument,
      { id: dataset.id, columns: [{ name: "note", type: "STRING", nullable: true }] },
      publisher.headers,
    );
    ok(res);
    const upserted = await stack.graphql(
      UpsertRecordsDocument,
      { datasetId: dataset.id, records: [{ id: 600, name: "noted", category: "c0", qty: 1, note: "hello" }] },
      publisher.headers,
    );
    expect(ok(upserted).upsertRecords).toMatchObject({ changedRows: 1, dataset: { rowCount: 600 } });
    const all = await readAll();
    expect(all).toHaveLength(600);
    expect(all.filter((v) => v.note !== null)).toEqual([
      expect.objectContaining({ id: expect.anything(), note: "hello" }),
    ]);
  });
});
