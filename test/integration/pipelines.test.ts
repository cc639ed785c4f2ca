// Pipelines end to end on the real stack: FILE sources served by a loopback HTTP server and from
// FILE_SOURCE_ROOT, runs worked by the in-process pg-boss worker, records read back through
// Dataset.records, rejected rows through PipelineRun.rejectedRows.
import { mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveRows } from "../../src/catalog/dataset-table.js";
import { sql } from "../../src/db/sql.js";
import type { DomainEvent } from "../../src/events/events.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDatasetDocument,
  CreatePipelineDocument,
  CreateSourceDocument,
  DeletePipelineDocument,
  PipelineDetailDocument,
  PipelineRunDetailDocument,
  RecordsDocument,
  RunPipelineDocument,
  SetAccountPlanDocument,
  SourceMetricsDocument,
  StartPipelineDocument,
  StopPipelineDocument,
  SyncSourceDocument,
  TestSourceConnectionDocument,
  UpdatePipelineDocument,
  type CreateDatasetMutationVariables,
} from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { uniqueName } from "../support/databases.js";

let stack: TestStack;
let server: Server;
let base: string;
let root: string;
let publisher: TestAccount;
const files = new Map<string, string | Buffer>();
/** Paths whose response is slowed down, for cancellation. */
const slow = new Set<string>();
/** Every domain event the app published (the worker runs in this process). */
const events: DomainEvent[] = [];
/** Paths that answer 503 this many more times. */
const failures = new Map<string, number>();

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "datahus-files-"));
  server = createServer((req, res) => {
    const path = new URL(req.url ?? "/", "http://x").pathname;
    const body = files.get(path);
    const failing = failures.get(path) ?? 0;
    if (failing > 0) {
      failures.set(path, failing - 1);
      res.writeHead(503).end();
      return;
    }
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const bytes = Buffer.from(body);
    res.writeHead(200, { "content-type": "text/plain", "content-length": String(bytes.length) });
    if (!slow.has(path)) {
      res.end(bytes);
      return;
    }
    // A trickle: 4 KiB every 50 ms, so a run stays busy long enough to be stopped.
    let at = 0;
    const timer = setInterval(() => {
      if (at >= bytes.length || res.destroyed) {
        clearInterval(timer);
        res.end();
        return;
      }
      res.write(bytes.subarray(at, at + 4096));
      at += 4096;
    }, 50);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack = await startStack({ FILE_SOURCE_ROOT: root, PIPELINE_BATCH_ROWS: "500" }, { worker: true });
  stack.app.services.events.addSink({ name: "test", handle: async (event) => void events.push(event) });
  publisher = await stack.signup("Pipeline Publisher", "PUBLISHER");
  const admin = await stack.admin();
  await stack.graphql(SetAccountPlanDocument, { accountId: publisher.accountId, plan: "PRO" }, admin.headers);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  server?.close();
  await rm(root, { recursive: true, force: true });
});

const COLUMNS: CreateDatasetMutationVariables["input"]["columns"] = [
  { name: "id", type: "INT64", nullable: false },
  { name: "name", type: "STRING", nullable: false },
  { name: "note", type: "STRING", nullable: true },
  { name: "amount", type: "DECIMAL", precision: 10, scale: 2, nullable: true },
];

async function dataset(columns = COLUMNS, who = publisher) {
  const slug = uniqueName("ds").toLowerCase();
  const res = await stack.graphql(
    CreateDatasetDocument,
    {
      input: { slug, title: slug, category: "test", access: "OPEN", keyColumns: ["id"], columns },
    },
    who.headers,
  );
  if (!res.data) throw new Error(JSON.stringify(res.errors));
  return { id: res.data.createDataset.id, slug };
}

async function fileSource(config: Record<string, unknown>, who = publisher) {
  const res = await stack.graphql(
    CreateSourceDocument,
    { input: { name: "file", type: "FILE", config } },
    who.headers,
  );
  if (!res.data) throw new Error(JSON.stringify(res.errors));
  return res.data.createSource.id;
}

async function pipeline(
  sourceId: string,
  datasetId: string,
  extra: {
    steps?: unknown;
    mode?: "FULL_REFRESH" | "INCREMENTAL";
    newFieldPolicy?: "IGNORE" | "ADD_COLUMN" | "FAIL";
    schedule?: string;
  } = {},
) {
  const res = await stack.graphql(
    CreatePipelineDocument,
    { input: { sourceId, datasetId, name: "load", steps: extra.steps ?? [], ...extra } },
    publisher.headers,
  );
  if (!res.data) throw new Error(JSON.stringify(res.errors));
  return res.data.createPipeline.id;
}

async function run(pipelineId: string): Promise<string> {
  const res = await stack.graphql(RunPipelineDocument, { id: pipelineId }, publisher.headers);
  if (!res.data) throw new Error(JSON.stringify(res.errors));
  return res.data.runPipeline.id;
}

async function runDetail(runId: string, rejectedAfter?: string | null) {
  const res = await stack.graphql(PipelineRunDetailDocument, { id: runId, rejectedAfter }, publisher.headers);
  const node = res.data?.node;
  if (!node || !("status" in node)) throw new Error(JSON.stringify(res));
  return node as Extract<typeof node, { status: unknown }>;
}

/** Polls the database (not the API, which is rate limited) until the run ends; then its detail. */
async function finished(runId: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  const id = decodeGlobalId(runId).id;
  for (;;) {
    const row = await stack.app.stores.prisma.pipelineRun.findUniqueOrThrow({ where: { id } });
    if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(row.status)) return runDetail(runId);
    if (Date.now() > deadline)
      throw new Error(
        `run ${runId} did not finish: ${JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? Number(v) : v))}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function records(slug: string) {
  const res = await stack.graphql(RecordsDocument, { slug, first: 100 }, publisher.headers);
  if (!res.data?.dataset) throw new Error(JSON.stringify(res.errors));
  return res.data.dataset.records.edges.map((e) => e.node.values as Record<string, unknown>);
}

async function detail(pipelineId: string) {
  const res = await stack.graphql(PipelineDetailDocument, { id: pipelineId }, publisher.headers);
  const node = res.data?.node;
  if (!node || !("mode" in node)) throw new Error(JSON.stringify(res));
  return node as Extract<typeof node, { mode: unknown }>;
}

const EDGE_CASES =
  "\uFEFFid,name,note,amount\r\n" +
  '1,"Smith, John","He said ""hi""",10.50\r\n' +
  '2,Ærøskøbing ☃ 東京,"line one\r\nline two",3\r\n' +
  "3,bad amount,,not-a-number\r\n" +
  "4,too,many,fields,here\r\n" +
  ",no id,,1\r\n" +
  "6,plain,,0.5\r\n";

describe("pipelines", () => {
  it("loads CSV edge cases over HTTP; malformed rows land in the quarantine with reasons", async () => {
    files.set("/edge.csv", EDGE_CASES);
    const ds = await dataset();
    const source = await fileSource({ url: `${base}/edge.csv` });
    const test = await stack.graphql(TestSourceConnectionDocument, { id: source }, publisher.headers);
    expect(test.data?.testSourceConnection.ok).toBe(false); // a ragged row among the first five
    const id = await pipeline(source, ds.id, { steps: [{ op: "trim" }] });
    const result = await finished(await run(id));

    expect(result).toMatchObject({ status: "SUCCEEDED", rowsRead: 6, rowsWritten: 3, rowsRejected: 3 });
    const rows = (await records(ds.slug)).sort((a, b) => Number(a.id) - Number(b.id));
    expect(rows).toEqual([
      { id: "1", name: "Smith, John", note: 'He said "hi"', amount: "10.50" },
      { id: "2", name: "Ærøskøbing ☃ 東京", note: "line one\r\nline two", amount: "3.00" },
      { id: "6", name: "plain", note: "", amount: "0.50" },
    ]);

    const rejected = result.rejectedRows.edges.map((e) => e.node);
    expect(rejected.map((r) => r.rowNumber)).toEqual([3, 4, 5]);
    expect(rejected.every((r) => r.origin === "edge.csv")).toBe(true);
    expect(rejected[0]!.reasons.join()).toMatch(/amount/);
    expect(rejected[1]!.reasons).toEqual(["expected 4 fields, found 5: column 5 is one too many"]);
    expect(rejected[1]!.raw).toContain("too,many,fields,here");
    expect(rejected[2]!.reasons.join()).toMatch(/column "id"/);

    const messages = result.logs.edges.map((e) => e.node.message);
    expect(messages[0]).toBe("Run started");
    expect(messages.at(-1)).toBe("Run succeeded");

    const p = await detail(id);
    expect(p.dataset).toMatchObject({ version: 1, rowCount: 3 });
    expect(p.lastRun?.id).toBe(result.id);
    expect(p.logs.edges.length).toBeGreaterThanOrEqual(2);

    const rawRun = decodeGlobalId(result.id).id;
    const mine = events.filter((e) => "runId" in e.data && e.data.runId === rawRun);
    expect(mine.map((e) => e.type)).toContain("pipeline.run.updated");
    expect(mine.find((e) => e.type === "dataset.updated")?.data).toMatchObject({
      datasetId: decodeGlobalId(ds.id).id,
      version: 1,
      rowCount: 3,
      changedRows: 3,
      cause: "PIPELINE_RUN",
    });
    expect(mine.at(-1)).toMatchObject({
      type: "pipeline.run.succeeded",
      data: { rowsWritten: 3, error: null },
    });

    const metrics = await stack.graphql(SourceMetricsDocument, { id: source }, publisher.headers);
    expect(metrics.data?.node).toMatchObject({
      metrics: {
        pipelines: 1,
        runs: 1,
        failedRuns: 0,
        rowsWritten: 3,
        rowsRejected: 3,
        lastStatus: "SUCCEEDED",
      },
    });
  });

  it("pages rejected rows with a keyset cursor", async () => {
    const lines = ["id,name,note,amount"];
    for (let i = 1; i <= 120; i++) lines.push(i % 2 ? `${i},n,,x${i}` : `${i},n,,1`);
    files.set("/many-bad.csv", lines.join("\n"));
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/many-bad.csv` }), ds.id);
    const first = await finished(await run(id));
    expect(first).toMatchObject({ rowsWritten: 60, rowsRejected: 60 });
    expect(first.rejectedRows.edges).toHaveLength(50);
    expect(first.rejectedRows.pageInfo.hasNextPage).toBe(true);
    const page2 = (await runDetail(first.id, first.rejectedRows.pageInfo.endCursor)).rejectedRows;
    expect(page2?.edges.map((e) => e.node.rowNumber)).toEqual(
      Array.from({ length: 10 }, (_, i) => 101 + 2 * i),
    );
    expect(page2?.pageInfo.hasNextPage).toBe(false);
  });

  it("FULL_REFRESH replaces the dataset atomically; readers see the old or the new table, never a part", async () => {
    const big = (n: number, tag: string) =>
      ["id,name,note,amount", ...Array.from({ length: n }, (_, i) => `${i + 1},${tag},,1`)].join("\n");
    files.set("/refresh.csv", big(3000, "first"));
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/refresh.csv` }), ds.id);
    await finished(await run(id));
    expect((await detail(id)).dataset).toMatchObject({ version: 1, rowCount: 3000 });

    files.set("/refresh.csv", big(2000, "second"));
    const raw = stack.app.stores.prisma;
    const table = (await raw.dataset.findUniqueOrThrow({ where: { id: decodeGlobalId(ds.id).id } }))
      .tableName;
    const db = stack.app.config.CLICKHOUSE_DATABASE;
    const second = await run(id);
    // While the second run loads (in batches of 500), the live table holds the first file whole.
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) {
      const [row] = await stack.app.stores.clickhouse.query<{ n: string; names: string[] }>(
        sql`SELECT toString(count()) AS n, groupUniqArray(name) AS names FROM ${liveRows(db, table)}`,
      );
      seen.add(`${row!.n}:${[...row!.names].sort().join("+")}`);
      if (seen.has("2000:second")) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    expect([...seen].every((s) => s === "3000:first" || s === "2000:second")).toBe(true);
    expect(await finished(second)).toMatchObject({ status: "SUCCEEDED", rowsWritten: 2000 });
    expect((await detail(id)).dataset).toMatchObject({ version: 2, rowCount: 2000 });
    const rows = await records(ds.slug);
    expect(rows.every((r) => r.name === "second")).toBe(true);
    // No staging table is left behind.
    const tables = await stack.app.stores.clickhouse.query<{ name: string }>(
      sql`SELECT name FROM system.tables WHERE database = ${db} AND name LIKE ${`${table}%`}`,
    );
    expect(tables.map((t) => t.name)).toEqual([table]);
  });

  it("INCREMENTAL upserts by key from a local file, and skips a file that did not change", async () => {
    const path = join(root, "inc.csv");
    await writeFile(path, "id,name,note,amount\n1,a,,1\n2,b,,2\n");
    const ds = await dataset();
    const source = await fileSource({ path: "inc.csv" });
    const id = await pipeline(source, ds.id, { mode: "INCREMENTAL" });
    expect(await finished(await run(id))).toMatchObject({ status: "SUCCEEDED", rowsWritten: 2 });

    const unchanged = await finished(await run(id));
    expect(unchanged).toMatchObject({ status: "SUCCEEDED", rowsRead: 0, rowsWritten: 0 });

    await writeFile(path, "id,name,note,amount\n2,b2,,2\n3,c,,3\n");
    expect(await finished(await run(id))).toMatchObject({ status: "SUCCEEDED", rowsWritten: 2 });
    const rows = (await records(ds.slug)).map((r) => `${r.id}:${r.name}`).sort();
    expect(rows).toEqual(["1:a", "2:b2", "3:c"]);
    expect((await detail(id)).dataset).toMatchObject({ version: 3, rowCount: 3 });
  });

  it("refuses local paths that leave FILE_SOURCE_ROOT, including through a symbolic link", async () => {
    const escape = await stack.graphql(
      CreateSourceDocument,
      { input: { name: "escape", type: "FILE", config: { path: "../etc/passwd.csv" } } },
      publisher.headers,
    );
    expect(escape.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    await symlink("/etc/passwd", join(root, "link.csv"));
    const ds = await dataset();
    const id = await pipeline(await fileSource({ path: "link.csv" }), ds.id);
    const result = await finished(await run(id));
    expect(result.status).toBe("FAILED");
    expect(result.error).toMatch(/outside the server's file directory/);
    const failed = events.find(
      (e) => e.type === "pipeline.run.failed" && e.data.runId === decodeGlobalId(result.id).id,
    );
    expect(failed?.data).toMatchObject({ error: result.error });
  });

  it("answers CONFLICT to a second manual run, and stopPipeline cancels the run in progress", async () => {
    const lines = ["id,name,note,amount", ...Array.from({ length: 20_000 }, (_, i) => `${i + 1},slow,,1`)];
    files.set("/slow.csv", lines.join("\n"));
    slow.add("/slow.csv");
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/slow.csv` }), ds.id);
    const runId = await run(id);
    const again = await stack.graphql(RunPipelineDocument, { id }, publisher.headers);
    expect(again.errors?.[0]?.extensions).toMatchObject({
      code: "CONFLICT",
      runId: decodeGlobalId(runId).id,
    });

    // Wait until rows are being written, then stop.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const row = await stack.app.stores.prisma.pipelineRun.findUniqueOrThrow({
        where: { id: decodeGlobalId(runId).id },
      });
      if (row.rowsWritten > 0n) break;
      if (Date.now() > deadline) throw new Error("the slow run never wrote");
      await new Promise((r) => setTimeout(r, 100));
    }
    const stopped = await stack.graphql(StopPipelineDocument, { id }, publisher.headers);
    expect(stopped.data?.stopPipeline.enabled).toBe(false);
    const result = await finished(runId);
    expect(result.status).toBe("CANCELLED");
    // The runner notices, drops its staging table and leaves the dataset untouched.
    const deadline2 = Date.now() + 10_000;
    for (;;) {
      const messages = (await finished(runId)).logs.edges.map((e) => e.node.message);
      if (messages.some((m) => m.startsWith("Run cancelled"))) break;
      if (Date.now() > deadline2) throw new Error(`no cancel log: ${messages.join(" | ")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect((await detail(id)).dataset).toMatchObject({ version: 0, rowCount: 0 });
    slow.delete("/slow.csv");
  });

  it("applies the new-field policies", async () => {
    files.set("/extra.csv", "id,name,colour,Weird Name\n1,a,red,x\n");
    const source = await fileSource({ url: `${base}/extra.csv` });
    const outcome = async (policy: "IGNORE" | "ADD_COLUMN" | "FAIL") => {
      const ds = await dataset();
      const id = await pipeline(source, ds.id, { newFieldPolicy: policy });
      return { ds, id, run: await finished(await run(id)) };
    };
    const ignore = await outcome("IGNORE");
    expect(ignore.run).toMatchObject({ status: "SUCCEEDED", newFields: ["colour", "Weird Name"] });
    expect(await records(ignore.ds.slug)).toEqual([{ id: "1", name: "a", note: null, amount: null }]);

    const add = await outcome("ADD_COLUMN");
    expect(add.run).toMatchObject({ status: "SUCCEEDED", newFields: ["colour", "Weird Name"] });
    expect(await records(add.ds.slug)).toEqual([
      { id: "1", name: "a", note: null, amount: null, colour: "red" },
    ]);
    expect((await detail(add.id)).dataset?.columns.map((c) => c.name)).toEqual([
      "id",
      "name",
      "note",
      "amount",
      "colour",
    ]);

    const fail = await outcome("FAIL");
    expect(fail.run.status).toBe("FAILED");
    expect(fail.run.error).toMatch(/field "colour"/);
    expect((await detail(fail.id)).dataset).toMatchObject({ version: 0 });
  });

  it("retries a run whose source failed, keeping the failed attempt in the log", async () => {
    files.set("/flaky.csv", "id,name\n1,a\n2,b\n");
    failures.set("/flaky.csv", 1);
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/flaky.csv` }), ds.id);
    const result = await finished(await run(id), 40_000);
    expect(result).toMatchObject({ status: "SUCCEEDED", rowsWritten: 2, error: null });
    const messages = result.logs.edges.map((e) => e.node.message);
    expect(messages).toContain("Run started");
    expect(messages.find((m) => m.startsWith("Attempt failed, will retry"))).toMatch(/answered 503/);
    expect(messages).toContain("Run restarted after an interrupted attempt");
    expect((await detail(id)).dataset).toMatchObject({ version: 1, rowCount: 2 });
  });

  it("loads an empty file as an empty dataset", async () => {
    files.set("/empty.csv", "");
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/empty.csv` }), ds.id);
    expect(await finished(await run(id))).toMatchObject({ status: "SUCCEEDED", rowsRead: 0, rowsWritten: 0 });
    expect((await detail(id)).dataset).toMatchObject({ version: 1, rowCount: 0 });
  });

  it("checks steps against the dataset, schedules, syncs a source and deletes", async () => {
    files.set("/steps.csv", "ID,Full Name\n1,  Ada  \n");
    const ds = await dataset();
    const source = await fileSource({ url: `${base}/steps.csv` });
    const bad = await stack.graphql(
      CreatePipelineDocument,
      {
        input: {
          sourceId: source,
          datasetId: ds.id,
          name: "bad",
          steps: [
            { op: "select", fields: ["ID"] },
            { op: "cast", field: "nope", to: "INT32" },
          ],
        },
      },
      publisher.headers,
    );
    expect(bad.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect((bad.errors?.[0]?.extensions?.problems as string[]).length).toBeGreaterThan(1);

    const id = await pipeline(source, ds.id, {
      steps: [{ op: "rename", map: { ID: "id", "Full Name": "name" } }, { op: "trim" }],
    });
    const noSchedule = await stack.graphql(StartPipelineDocument, { id }, publisher.headers);
    expect(noSchedule.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    await stack.graphql(UpdatePipelineDocument, { id, input: { schedule: "0 3 * * *" } }, publisher.headers);
    const started = await stack.graphql(StartPipelineDocument, { id }, publisher.headers);
    expect(started.data?.startPipeline).toMatchObject({ enabled: true, schedule: "0 3 * * *" });

    // The cron schedule is pg-boss's, keyed by the pipeline; each tick queues a SCHEDULE run.
    const rawId = decodeGlobalId(id).id;
    const boss = stack.app.config.PGBOSS_SCHEMA;
    const schedules = await stack.app.stores.prisma.$queryRawUnsafe<{ key: string; cron: string }[]>(
      `SELECT key, cron FROM "${boss}".schedule WHERE name = 'pipelines.schedule'`,
    );
    expect(schedules).toContainEqual({ key: rawId, cron: "0 3 * * *" });
    const tick = await stack.app.services.pipelines.runScheduled(rawId);
    expect(tick?.trigger).toBe("SCHEDULE");
    expect(await stack.app.services.pipelines.runScheduled(rawId)).toBeNull(); // one is queued
    await finished(encodeGlobalId("PipelineRun", tick!.id));

    const synced = await stack.graphql(SyncSourceDocument, { id: source }, publisher.headers);
    expect(synced.data?.syncSource).toHaveLength(1);
    expect(await finished(synced.data!.syncSource[0]!.id)).toMatchObject({ status: "SUCCEEDED" });
    expect(await records(ds.slug)).toEqual([{ id: "1", name: "Ada", note: null, amount: null }]);

    await stack.graphql(StopPipelineDocument, { id }, publisher.headers);
    const after = await stack.app.stores.prisma.$queryRawUnsafe<{ key: string }[]>(
      `SELECT key FROM "${boss}".schedule WHERE name = 'pipelines.schedule' AND key = $1`,
      rawId,
    );
    expect(after).toEqual([]);
    expect(await stack.app.services.pipelines.runScheduled(rawId)).toBeNull(); // stopped
    const deleted = await stack.graphql(DeletePipelineDocument, { id }, publisher.headers);
    expect(deleted.data?.deletePipeline.id).toBe(id);
  });

  it("PUSH-type runs queue behind each other instead of being refused", async () => {
    files.set("/push.csv", "id,name\n1,a\n");
    const ds = await dataset();
    const id = await pipeline(await fileSource({ url: `${base}/push.csv` }), ds.id, { mode: "INCREMENTAL" });
    const prisma = stack.app.stores.prisma;
    const raw = await prisma.pipeline.findUniqueOrThrow({ where: { id: decodeGlobalId(id).id } });
    const runs: { status: string }[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await prisma.pipelineRun.create({
        data: { pipelineId: raw.id, accountId: raw.accountId, trigger: "PUSH" },
      });
      await stack.app.services.jobs.send("pipelines.run", { runId: r.id });
      ids.push(r.id);
    }
    for (const runId of ids) {
      runs.push(await finished(encodeGlobalId("PipelineRun", runId)));
    }
    expect(runs.map((r) => r.status)).toEqual(["SUCCEEDED", "SUCCEEDED", "SUCCEEDED"]);
    // In the order they were queued.
    const finishedAt = await Promise.all(
      ids.map(
        async (runId) => (await prisma.pipelineRun.findUniqueOrThrow({ where: { id: runId } })).finishedAt!,
      ),
    );
    expect([...finishedAt].sort((a, b) => a.getTime() - b.getTime())).toEqual(finishedAt);
    expect((await detail(id)).dataset).toMatchObject({ version: 3, rowCount: 1 });
  });
});
