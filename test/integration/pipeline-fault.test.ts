// The ingestion issue's fault test: a real worker process is killed (SIGKILL) in the middle of a
// 200,000-row sync; pg-boss notices the missed heartbeat and a second worker process retries the
// job. The dataset must end exactly as one clean run would: same rows, no duplicate keys, same
// values.
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { liveRows, tableRef } from "../../src/catalog/dataset-table.js";
import { sql } from "../../src/db/sql.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { PIPELINE_RUN_QUEUE } from "../../src/pipelines/pipeline.queue.js";
import { stagingTableName } from "../../src/pipelines/run-tables.js";
import {
  CreateDatasetDocument,
  CreatePipelineDocument,
  CreateSourceDocument,
  PipelineRunDetailDocument,
  RunPipelineDocument,
} from "../generated/graphql.js";
import { describeOnServer, embeddedEngine, uniqueName } from "../support/databases.js";
import { startStack, type TestStack } from "../support/stack.js";
import { spawnWorker } from "../support/worker-process.js";

const ROWS = 200_000;
const BAD = ROWS / 10_000;
const GOOD = ROWS - BAD;

let stack: TestStack;
let root: string;
const workers: ChildProcess[] = [];
/** What the first test loaded, for the second. */
let loaded: { pipelineId: string; datasetId: string } | undefined;

// Both the API (which creates the queues, with their heartbeat) and the workers use these.
const overrides = {
  PIPELINE_RUN_HEARTBEAT_SECONDS: "10",
  JOBS_MONITOR_INTERVAL_SECONDS: "1",
  PIPELINE_BATCH_ROWS: "2000",
};

beforeAll(async () => {
  if (embeddedEngine) return;
  root = await mkdtemp(join(tmpdir(), "datahus-fault-"));
  stack = await startStack({ ...overrides, FILE_SOURCE_ROOT: root });
}, 60_000);

afterAll(async () => {
  for (const worker of workers) if (worker.exitCode === null) worker.kill("SIGKILL");
  await stack?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

function startWorker(): ChildProcess {
  const worker = spawnWorker(stack, { ...overrides, FILE_SOURCE_ROOT: root });
  workers.push(worker);
  return worker;
}

const amountOf = (id: number) => (id * 7919) % 1000;
const nameOf = (id: number) => `name "${id % 997}", ü`;

// Real worker processes share the API's ClickHouse: a server only (the embedded engine's data
// belongs to the one process that opened it).
describeOnServer("a worker killed mid-sync", () => {
  it("is retried by another worker and leaves the dataset equal to the source", async () => {
    const lines = ["id,name,amount"];
    let amountSum = 0;
    let weighted = 0;
    let nameLength = 0;
    for (let id = 1; id <= ROWS; id++) {
      // Every 10,000th row fails validation: it must be quarantined once, however many attempts.
      if (id % 10_000 === 0) {
        lines.push(`${id},bad,-1`);
        continue;
      }
      lines.push(`${id},"${nameOf(id).replaceAll('"', '""')}",${amountOf(id)}`);
      amountSum += amountOf(id);
      weighted += id * amountOf(id);
      nameLength += [...nameOf(id)].length;
    }
    await writeFile(join(root, "big.csv"), lines.join("\n"));

    const publisher = await stack.signup("Fault Publisher", "PUBLISHER");
    const slug = uniqueName("fault").toLowerCase();
    const ds = await stack.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: slug,
          category: "test",
          access: "OPEN",
          keyColumns: ["id"],
          columns: [
            { name: "id", type: "INT64", nullable: false },
            { name: "name", type: "STRING", nullable: false },
            { name: "amount", type: "INT64", nullable: false },
          ],
        },
      },
      publisher.headers,
    );
    const source = await stack.graphql(
      CreateSourceDocument,
      { input: { name: "big", type: "FILE", config: { path: "big.csv" } } },
      publisher.headers,
    );
    const pipeline = await stack.graphql(
      CreatePipelineDocument,
      {
        input: {
          sourceId: source.data!.createSource.id,
          datasetId: ds.data!.createDataset.id,
          name: "big",
          steps: [{ op: "trim" }, { op: "validate", field: "amount", type: "INT64", min: 0 }],
        },
      },
      publisher.headers,
    );
    const prisma = stack.app.stores.prisma;
    const ch = stack.app.stores.clickhouse;
    const db = stack.app.config.CLICKHOUSE_DATABASE;
    const dataset = await prisma.dataset.findUniqueOrThrow({ where: { slug } });

    const first = startWorker();
    const run = await stack.graphql(
      RunPipelineDocument,
      { id: pipeline.data!.createPipeline.id },
      publisher.headers,
    );
    const runId = decodeGlobalId(run.data!.runPipeline.id).id;
    const staging = tableRef(db, stagingTableName(dataset.tableName, runId));

    const { written, status: killedStatus } = await killOnceWriting(first, runId, staging);
    expect(killedStatus).toBe("RUNNING");
    expect(written).toBeLessThan(ROWS);

    startWorker();
    const deadline = Date.now() + 90_000;
    let status: string = killedStatus;
    while (!["SUCCEEDED", "FAILED", "CANCELLED"].includes(status)) {
      if (Date.now() > deadline) throw new Error("the retried run did not finish");
      await new Promise((r) => setTimeout(r, 250));
      status = (await prisma.pipelineRun.findUniqueOrThrow({ where: { id: runId } })).status;
    }
    const detail = await stack.graphql(
      PipelineRunDetailDocument,
      { id: run.data!.runPipeline.id },
      publisher.headers,
    );
    const node = detail.data!.node as {
      status: string;
      rowsRead: number;
      rowsWritten: number;
      rowsRejected: number;
      logs: { edges: { node: { message: string } }[] };
      rejectedRows: { edges: { node: { rowNumber: number } }[] };
    };
    expect(node).toMatchObject({ status: "SUCCEEDED", rowsRead: ROWS, rowsWritten: GOOD, rowsRejected: BAD });
    expect(node.rejectedRows.edges.map((e) => e.node.rowNumber)).toEqual(
      Array.from({ length: BAD }, (_, i) => (i + 1) * 10_000),
    );
    expect(node.logs.edges.map((e) => e.node.message)).toContain(
      "Run restarted after an interrupted attempt",
    );

    const [live] = await ch.query<Record<string, string>>(sql`
      SELECT toString(count()) AS rows, toString(uniqExact(_key)) AS keys, toString(sum(amount)) AS amount_sum,
        toString(sum(id * amount)) AS weighted_sum, toString(sum(lengthUTF8(name))) AS name_chars,
        toString(min(id)) AS id_min, toString(max(id)) AS id_max
      FROM ${liveRows(db, dataset.tableName)} WHERE _deleted = 0`);
    expect(live).toEqual({
      rows: String(GOOD),
      keys: String(GOOD),
      amount_sum: String(amountSum),
      weighted_sum: String(weighted),
      name_chars: String(nameLength),
      id_min: "1",
      id_max: String(ROWS - 1),
    });
    // Not even unmerged duplicates: the killed attempt's rows went with its staging table.
    const [all] = await ch.query<{ n: string }>(
      sql`SELECT toString(count()) AS n FROM ${tableRef(db, dataset.tableName)}`,
    );
    expect(all?.n).toBe(String(GOOD));
    const after = await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.id } });
    expect(after.version).toBe(1);
    expect(after.rowCount).toBe(BigInt(GOOD));
    loaded = { pipelineId: decodeGlobalId(pipeline.data!.createPipeline.id).id, datasetId: dataset.id };
  }, 120_000);

  it("fails the run from the dead-letter queue when no retry is left, leaving the dataset as it was", async () => {
    expect(loaded).toBeDefined();
    const prisma = stack.app.stores.prisma;
    const db = stack.app.config.CLICKHOUSE_DATABASE;
    const pipeline = await prisma.pipeline.findUniqueOrThrow({ where: { id: loaded!.pipelineId } });
    const dataset = await prisma.dataset.findUniqueOrThrow({ where: { id: loaded!.datasetId } });
    // Only the worker about to be killed may take the job.
    for (const w of workers.filter((w) => w.exitCode === null && w.signalCode === null)) {
      w.kill("SIGKILL");
      await new Promise((resolve) => w.once("exit", resolve));
    }
    const run = await prisma.pipelineRun.create({
      data: { pipelineId: pipeline.id, accountId: pipeline.accountId, trigger: "MANUAL" },
    });
    const worker = startWorker();
    // This job may not be retried: once its worker dies it goes to pipelines.run.dead.
    await stack.app.services.jobs.send(PIPELINE_RUN_QUEUE, { runId: run.id }, { retryLimit: 0 });
    const staging = stagingTableName(dataset.tableName, run.id);
    const { status } = await killOnceWriting(worker, run.id, tableRef(db, staging));
    expect(status).toBe("RUNNING");
    startWorker();
    const deadline = Date.now() + 60_000;
    let row = await prisma.pipelineRun.findUniqueOrThrow({ where: { id: run.id } });
    while (row.status === "RUNNING" || row.status === "QUEUED") {
      if (Date.now() > deadline) throw new Error("the abandoned run was never failed");
      await new Promise((r) => setTimeout(r, 250));
      row = await prisma.pipelineRun.findUniqueOrThrow({ where: { id: run.id } });
    }
    expect(row).toMatchObject({ status: "FAILED", error: expect.stringMatching(/stopped responding/) });
    const tables = await stack.app.stores.clickhouse.query<{ name: string }>(
      sql`SELECT name FROM system.tables WHERE database = ${db} AND name = ${staging}`,
    );
    expect(tables).toEqual([]);
    expect(await prisma.dataset.findUniqueOrThrow({ where: { id: dataset.id } })).toMatchObject({
      version: 1,
      rowCount: BigInt(GOOD),
    });
  }, 90_000);
});

/** Waits until the run's staging table holds rows, then kills the worker with SIGKILL. */
async function killOnceWriting(worker: ChildProcess, runId: string, staging: ReturnType<typeof tableRef>) {
  const ch = stack.app.stores.clickhouse;
  const started = Date.now();
  let written = 0;
  while (written < 10_000) {
    if (Date.now() - started > 30_000) throw new Error("the worker never wrote rows");
    await new Promise((r) => setTimeout(r, 20));
    const [row] = await ch
      .query<{ n: string }>(sql`SELECT toString(count()) AS n FROM ${staging}`)
      .catch(() => [{ n: "0" }]);
    written = Number(row?.n ?? 0);
  }
  worker.kill("SIGKILL");
  await new Promise((resolve) => worker.once("exit", resolve));
  const run = await stack.app.stores.prisma.pipelineRun.findUniqueOrThrow({ where: { id: runId } });
  return { written, status: run.status };
}
