// Push ingestion on the real stack, up to the queued run: records pushed over GraphQL and REST
// (JSON array, one object, NDJSON) are stored in PostgreSQL, a QUEUED PUSH run of the dataset's
// PUSH pipeline is created and its job sent to pg-boss; the PUSH connector reads the stored batch
// back as source rows, quarantining what is not a record. The run itself is the runner's (its
// worker calls connectorFor("PUSH").read).
import type { PgBoss } from "pg-boss";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { pruneIngestBatchesJob, BATCH_RETENTION_MS } from "../../src/ingest/ingest.jobs.js";
import { createBoss } from "../../src/jobs/boss.js";
import { PIPELINE_RUN_QUEUE } from "../../src/pipelines/pipeline.queue.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import type { SourceRow } from "../../src/sources/connectors/types.js";
import type { Logger } from "../../src/observability/logger.js";
import {
  CreateDatasetDocument,
  CreateSourceDocument,
  IngestRecordsDocument,
  TestSourceConnectionDocument,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

const MAX_BYTES = 4096;

let stack: TestStack;
let boss: PgBoss;
let publisher: TestAccount;
let other: TestAccount;
let buyer: TestAccount;
let datasetId: string;
let sourceId: string;
const slug = "pushed_events";

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

const prisma = () => stack.app.stores.prisma;

function push(body: string, contentType: string, headers = publisher.headers, target = slug) {
  return fetch(`${stack.url}/api/v1/ingest/${target}`, {
    method: "POST",
    headers: { ...headers, "content-type": contentType },
    body,
  });
}

/** What the runner does with a PUSH run: read its batch through the PUSH connector. */
async function readBatch(runId: string): Promise<SourceRow[]> {
  const reader = connectorFor("PUSH")!.read({
    sourceId,
    runId,
    config: {},
    secrets: {},
    checkpoint: null,
    mode: "INCREMENTAL",
    log: { debug() {}, info() {}, warn() {} },
    signal: new AbortController().signal,
  });
  const rows: SourceRow[] = [];
  for await (const row of reader) rows.push(row);
  expect(reader.checkpoint()).toBeNull();
  return rows;
}

/** The run, its stored batch and its pg-boss job, for a run id as the API returns it. */
async function queued(globalRunId: string) {
  const runId = decodeGlobalId(globalRunId, ["PipelineRun"]).id;
  const run = await prisma().pipelineRun.findUniqueOrThrow({
    where: { id: runId },
    include: { ingestBatch: true },
  });
  expect(run.jobId).toBeTruthy();
  const job = await boss.getJobById(PIPELINE_RUN_QUEUE, run.jobId!);
  return { run, job };
}

beforeAll(async () => {
  stack = await startStack({ INGEST_MAX_BYTES: String(MAX_BYTES) });
  // The run queue is the runner's to declare (jobs/registry.ts); here it only has to exist.
  boss = createBoss(stack.app.config, "api");
  await boss.start();
  await boss.createQueue(PIPELINE_RUN_QUEUE);
  publisher = await stack.signup("Pushing Publisher", "PUBLISHER");
  other = await stack.signup("Other Publisher", "PUBLISHER");
  buyer = await stack.signup("Buyer", "BUYER");
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: "Pushed events",
        category: "tests",
        access: "OPEN",
        keyColumns: ["id"],
        columns: [
          { name: "id", type: "STRING", nullable: false },
          { name: "n", type: "INT32", nullable: true },
        ],
      },
    },
    publisher.headers,
  );
  datasetId = ok(created).createDataset.id;
}, 60_000);

afterAll(async () => {
  await boss?.stop({ graceful: false });
  await stack?.close();
});

describe("without a PUSH pipeline", () => {
  it("refuses a push, explaining how to set one up, and stores nothing", async () => {
    const res = await stack.graphql(
      IngestRecordsDocument,
      { datasetId, records: [{ id: "a" }] },
      publisher.headers,
    );
    expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(res.errors?.[0]?.message).toMatch(/PUSH.*createSource.*createPipeline/);
    const rest = await push('[{"id":"a"}]', "application/json");
    expect(rest.status).toBe(400);
    expect(await prisma().ingestBatch.count()).toBe(0);
    expect(await prisma().pipelineRun.count()).toBe(0);
  });
});

describe("with a PUSH pipeline", () => {
  let pipelineId: string;

  beforeAll(async () => {
    const source = ok(
      await stack.graphql(
        CreateSourceDocument,
        { input: { name: "events", type: "PUSH", config: {} } },
        publisher.headers,
      ),
    ).createSource;
    sourceId = decodeGlobalId(source.id).id;
    // createPipeline is the runner's; the row it makes is all a push needs.
    const pipeline = await prisma().pipeline.create({
      data: {
        accountId: publisher.rawAccountId,
        sourceId,
        datasetId: decodeGlobalId(datasetId).id,
        name: "events in",
        steps: [],
        mode: "INCREMENTAL",
      },
    });
    pipelineId = pipeline.id;
  });

  it("ingestRecords stores the batch, queues a PUSH run for the publisher and sends its job", async () => {
    const records = [{ id: "a", n: 1 }, { id: "b", n: "2" }, 5, "text", ["x"]];
    const accepted = ok(
      await stack.graphql(IngestRecordsDocument, { datasetId, records }, publisher.headers),
    ).ingestRecords;
    expect(accepted.records).toBe(5);
    const { run, job } = await queued(accepted.runId);
    expect(run).toMatchObject({
      pipelineId,
      accountId: publisher.rawAccountId,
      status: "QUEUED",
      trigger: "PUSH",
    });
    expect(run.ingestBatch?.contentType).toBe("application/json");
    expect(job?.data).toEqual({ runId: run.id });
    expect(job?.state).toBe("created");

    const rows = await readBatch(run.id);
    expect(rows).toEqual([
      { ok: true, rowNumber: 1, record: { id: "a", n: 1 }, bytes: 16 },
      { ok: true, rowNumber: 2, record: { id: "b", n: "2" }, bytes: 18 },
      { ok: false, rowNumber: 3, raw: "5", reasons: ["is a number, not a JSON object"] },
      { ok: false, rowNumber: 4, raw: '"text"', reasons: ["is a string, not a JSON object"] },
      { ok: false, rowNumber: 5, raw: '["x"]', reasons: ["is an array, not a JSON object"] },
    ]);
  });

  it("POST /api/v1/ingest takes a JSON array or one object, and answers 202 with the run id", async () => {
    const array = await push(JSON.stringify([{ id: "c" }, { id: "d" }]), "application/json");
    expect(array.status).toBe(202);
    const arrayBody = (await array.json()) as { runId: string; records: number };
    expect(arrayBody.records).toBe(2);
    expect((await readBatch((await queued(arrayBody.runId)).run.id)).map((r) => r.ok && r.record)).toEqual([
      { id: "c" },
      { id: "d" },
    ]);

    const single = await push(JSON.stringify({ id: "e", n: 5 }), "application/json; charset=utf-8");
    expect(single.status).toBe(202);
    const singleBody = (await single.json()) as { runId: string; records: number };
    expect(singleBody.records).toBe(1);
    const { run, job } = await queued(singleBody.runId);
    expect(job?.data).toEqual({ runId: run.id });
    expect(await readBatch(run.id)).toEqual([
      { ok: true, rowNumber: 1, record: { id: "e", n: 5 }, bytes: 16 },
    ]);
  });

  it("takes NDJSON as sent; the run quarantines unreadable lines with their reasons", async () => {
    const body = '{"id":"f"}\r\n\n{"id": "g", "n": 7}\nnot json\n"text"\n{"id":"h"}';
    const res = await push(body, "application/x-ndjson");
    expect(res.status).toBe(202);
    const accepted = (await res.json()) as { runId: string; records: number };
    expect(accepted.records).toBe(5);
    const { run } = await queued(accepted.runId);
    expect(run.ingestBatch?.contentType).toBe("application/x-ndjson");
    expect(Buffer.from(run.ingestBatch!.body).toString("utf8")).toBe(body);
    const rows = await readBatch(run.id);
    expect(rows.map((r) => (r.ok ? r.record : r.reasons[0]))).toEqual([
      { id: "f" },
      { id: "g", n: 7 },
      expect.stringMatching(/^invalid JSON/),
      "is a string, not a JSON object",
      { id: "h" },
    ]);
    // Row numbers are lines, so a quarantined row points at the line that was sent.
    expect(rows.map((r) => r.rowNumber)).toEqual([1, 3, 4, 5, 6]);
    expect(rows[2]).toMatchObject({ ok: false, raw: "not json" });
  });

  it("refuses what is too big (413), empty, or not JSON, and stores none of it", async () => {
    const before = await prisma().ingestBatch.count();
    const big = JSON.stringify(Array.from({ length: 300 }, (_, i) => ({ id: `record-${i}` })));
    expect(big.length).toBeGreaterThan(MAX_BYTES);
    const tooBig = await push(big, "application/json");
    expect(tooBig.status).toBe(413);
    expect((await push(big.replaceAll(",{", "\n{"), "application/x-ndjson")).status).toBe(413);
    const viaGraphql = await stack.graphql(
      IngestRecordsDocument,
      { datasetId, records: JSON.parse(big) as unknown[] },
      publisher.headers,
    );
    expect(viaGraphql.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", maxBytes: MAX_BYTES });

    expect((await push("[]", "application/json")).status).toBe(400);
    expect((await push("\n\n", "application/x-ndjson")).status).toBe(400);
    expect((await push("[{", "application/json")).status).toBe(400);
    expect((await push("id,n\na,1", "text/csv")).status).toBe(415);
    const empty = await stack.graphql(IngestRecordsDocument, { datasetId, records: [] }, publisher.headers);
    expect(empty.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(await prisma().ingestBatch.count()).toBe(before);
  });

  it("is the publisher's alone: another publisher gets NOT_FOUND, a buyer FORBIDDEN", async () => {
    const before = await prisma().pipelineRun.count();
    const byOther = await stack.graphql(
      IngestRecordsDocument,
      { datasetId, records: [{ id: "x" }] },
      other.headers,
    );
    expect(byOther.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    expect((await push('{"id":"x"}', "application/json", other.headers)).status).toBe(404);
    const byBuyer = await stack.graphql(
      IngestRecordsDocument,
      { datasetId, records: [{ id: "x" }] },
      buyer.headers,
    );
    expect(byBuyer.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await push('{"id":"x"}', "application/json", buyer.headers)).status).toBe(403);
    expect((await push('{"id":"x"}', "application/json", {})).status).toBe(401);
    expect((await push('{"id":"x"}', "application/json", publisher.headers, "no_such_dataset")).status).toBe(
      404,
    );
    expect(await prisma().pipelineRun.count()).toBe(before);
  });

  it("a PUSH source has no settings to check and nothing to test", async () => {
    expect(connectorFor("PUSH")!.validate({}, {})).toEqual([]);
    expect(connectorFor("PUSH")!.validate({ note: "from the shop" }, {})).toEqual([]);
    const tested = ok(
      await stack.graphql(
        TestSourceConnectionDocument,
        { id: encodeGlobalId("Source", sourceId) },
        publisher.headers,
      ),
    ).testSourceConnection;
    expect(tested.ok).toBe(false);
    expect(tested.message).toMatch(/PUSH/);
  });

  it("the cleanup job drops batches of runs finished over a day ago, and only those", async () => {
    const now = new Date();
    const old = new Date(now.getTime() - BATCH_RETENTION_MS - 60_000);
    const batches = await prisma().ingestBatch.findMany({
      orderBy: { createdAt: "asc" },
      include: { run: true },
    });
    expect(batches.length).toBeGreaterThanOrEqual(4);
    const [finishedOld, failedOld, queuedOld, finishedNew] = batches;
    await prisma().pipelineRun.update({ where: { id: finishedOld!.runId }, data: { status: "SUCCEEDED" } });
    await prisma().pipelineRun.update({ where: { id: failedOld!.runId }, data: { status: "FAILED" } });
    await prisma().pipelineRun.update({ where: { id: finishedNew!.runId }, data: { status: "SUCCEEDED" } });
    await prisma().ingestBatch.updateMany({
      where: { id: { in: [finishedOld!.id, failedOld!.id, queuedOld!.id] } },
      data: { createdAt: old },
    });
    const logged: unknown[] = [];
    const log = { info: (fields: unknown) => logged.push(fields) } as unknown as Logger;
    await pruneIngestBatchesJob(stack.app.services, () => now).handle({}, { id: "test", log });
    const left = new Set((await prisma().ingestBatch.findMany()).map((b) => b.id));
    expect(left.has(finishedOld!.id)).toBe(false);
    expect(left.has(failedOld!.id)).toBe(false);
    expect(left.has(queuedOld!.id)).toBe(true); // not read yet: kept however old
    expect(left.has(finishedNew!.id)).toBe(true);
    expect(logged).toEqual([{ pruned: 2 }]);
    // The runs themselves stay, with their history.
    expect(await prisma().pipelineRun.count({ where: { id: finishedOld!.runId } })).toBe(1);
  });
});
