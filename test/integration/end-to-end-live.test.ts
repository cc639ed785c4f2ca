// Distribution after a real sync, end to end: two API processes share PostgreSQL, ClickHouse and
// Redis; the worker attached to process A runs a FILE pipeline (the file served by a loopback HTTP
// server), and what that run causes reaches buyers and the publisher: a `datasetUpdated`
// subscriber on process B, a buyer's signed `dataset.updated` webhook and the publisher's
// `pipeline.run.succeeded` webhook, both verified with `standardwebhooks` (not our code).
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDeliveryDocument,
  DatasetUpdatedDocument,
  PipelineRunUpdatedDocument,
  PublishDatasetDocument,
  PurchaseDatasetDocument,
} from "../generated/graphql.js";
import { liveClient, until, type LiveClient } from "../support/live.js";
import { ok, publishing } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

let apiA: TestStack;
let apiB: TestStack;
let server: Server;
let base: string;
let publisher: TestAccount;
let buyer: TestAccount;
let stranger: TestAccount;
const received: Received[] = [];
const clients: LiveClient[] = [];
const CSV = "id,name\n1,one\n2,two\n3,three\n";

beforeAll(async () => {
  // One loopback server: GET /data.csv is the source file; POSTs are webhook deliveries.
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      if (req.method === "GET" && req.url === "/data.csv") {
        res.writeHead(200, { "content-type": "text/csv" }).end(CSV);
        return;
      }
      received.push({
        path: req.url ?? "/",
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
      });
      res.writeHead(200).end("thanks");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const env = { WEBHOOK_RETRY_SCHEDULE: "1s,1s", WEBHOOK_TIMEOUT_MS: "2000" };
  apiA = await startStack(env, { worker: true });
  apiB = await startStack(env, { sharing: apiA });
  publisher = await apiA.signup("Live Publisher", "PUBLISHER");
  buyer = await apiA.signup("Live Buyer", "BUYER");
  stranger = await apiA.signup("Stranger", "BUYER");
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.dispose()));
  await apiB?.close();
  await apiA?.close();
  await new Promise((resolve) => server?.close(resolve));
});

function verified(request: Received, secret: string) {
  const headers = {
    "webhook-id": String(request.headers["webhook-id"]),
    "webhook-timestamp": String(request.headers["webhook-timestamp"]),
    "webhook-signature": String(request.headers["webhook-signature"]),
  };
  return new Webhook(secret).verify(request.body, headers) as { type: string; data: Record<string, unknown> };
}

async function webhook(owner: TestAccount, datasetId: string, path: string, eventTypes: string[]) {
  const res = await apiA.graphql(
    CreateDeliveryDocument,
    { input: { datasetId, kind: "WEBHOOK", config: { url: `${base}${path}` }, eventTypes } },
    owner.headers,
  );
  return ok(res).createDelivery.signingSecret!;
}

const connect = (stack: TestStack, account: TestAccount) => {
  const client = liveClient(stack, { "x-api-key": account.secret });
  clients.push(client);
  return client;
};

describe("after a real pipeline run", () => {
  it("notifies an entitled subscriber on the other API process and both webhooks, signed", async () => {
    const journey = publishing(apiA, publisher);
    const ds = await journey.dataset(
      [
        { name: "id", type: "INT64", nullable: false },
        { name: "name", type: "STRING", nullable: false },
      ],
      { access: "PURCHASED", purchasePrice: 10, purchaseTerm: "ONE_TIME" },
    );
    ok(await apiA.graphql(PublishDatasetDocument, { id: ds.id }, publisher.headers));
    ok(await apiA.graphql(PurchaseDatasetDocument, { datasetId: ds.id }, buyer.headers));
    const pipeline = await journey.pipeline(
      await journey.source("FILE", { url: `${base}/data.csv` }),
      ds.id,
      "FULL_REFRESH",
    );
    const buyerSecret = await webhook(buyer, ds.id, "/buyer", ["dataset.updated"]);
    const publisherSecret = await webhook(publisher, ds.id, "/publisher", ["pipeline.run.succeeded"]);

    // A buyer who did not buy is refused when subscribing, on either process.
    const refused = connect(apiB, stranger).subscribe(DatasetUpdatedDocument, { datasetId: ds.id });
    expect((await refused.next()).errors?.[0]?.extensions).toMatchObject({ code: "FORBIDDEN" });
    await refused.ended;

    const updates = connect(apiB, buyer).subscribe(DatasetUpdatedDocument, { datasetId: ds.id });
    const progress = connect(apiB, publisher).subscribe(PipelineRunUpdatedDocument, { pipelineId: pipeline });
    await until(() => apiB.app.live.active === 2, 5000, "both subscriptions on process B");

    const runId = await journey.run(pipeline);
    expect(await journey.finished(runId)).toMatchObject({ status: "SUCCEEDED", rowsWritten: 3 });

    const update = await updates.next(10_000);
    expect(update.data?.datasetUpdated).toMatchObject({
      datasetId: ds.id,
      version: 1,
      rowCount: 3,
      changedRows: 3,
      cause: "PIPELINE_RUN",
      runId,
      dataset: { id: ds.id, slug: ds.slug },
    });
    // The publisher follows the run to its end on process B too.
    let last = (await progress.next(10_000)).data?.pipelineRunUpdated;
    while (last?.status !== "SUCCEEDED") last = (await progress.next(10_000)).data?.pipelineRunUpdated;
    expect(last).toMatchObject({ runId, pipelineId: pipeline, rowsWritten: 3, run: { id: runId } });
    expect(refused.pending).toEqual([]);

    await until(
      () => received.some((r) => r.path === "/buyer") && received.some((r) => r.path === "/publisher"),
      15_000,
      "both webhooks",
    );
    const toBuyer = received.filter((r) => r.path === "/buyer");
    expect(toBuyer).toHaveLength(1);
    // Buyers hear what changed, not the publisher's run; the webhook carries the same event the
    // subscriber got (webhook-id is the event id).
    expect(verified(toBuyer[0]!, buyerSecret)).toEqual({
      type: "dataset.updated",
      timestamp: update.data?.datasetUpdated.occurredAt,
      data: { datasetId: ds.id, version: 1, rowCount: 3, changedRows: 3, cause: "PIPELINE_RUN" },
    });
    expect(toBuyer[0]!.headers["webhook-id"]).toBe(update.data?.datasetUpdated.eventId);
    const toPublisher = received.filter((r) => r.path === "/publisher");
    expect(toPublisher).toHaveLength(1);
    expect(verified(toPublisher[0]!, publisherSecret)).toMatchObject({
      type: "pipeline.run.succeeded",
      data: {
        runId,
        pipelineId: pipeline,
        datasetId: ds.id,
        rowsRead: 3,
        rowsWritten: 3,
        rowsRejected: 0,
        error: null,
      },
    });
    // The buyer's signing secret does not verify the publisher's delivery: each has its own.
    expect(() => verified(toPublisher[0]!, buyerSecret)).toThrow();
    expect(decodeGlobalId(runId).type).toBe("PipelineRun");
  });
});
