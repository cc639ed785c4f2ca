// Live subscription fan-out: 1,000 graphql-ws clients on loopback, half on each of two API
// processes (two apps with their own Redis connections, sharing the databases and Redis prefix),
// all following one dataset. Events are published on process A's bus, one at a time; each client
// records the delay from publish to receipt. Prints the time to connect the clients and the delay
// percentiles; asserts only that every client received every event exactly once. Clients and
// servers share one Node process (and its event loop): the delays include the clients' own work.
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import { newEvent, type DatasetUpdated } from "../src/events/events.js";
import { decodeGlobalId } from "../src/graphql/relay.js";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import {
  CreateDatasetDocument,
  DatasetUpdatedDocument,
  DatasetUpdatedFlatDocument,
  PublishDatasetDocument,
  SetAccountPlanDocument,
} from "../test/generated/graphql.js";
import { liveClient, until, type LiveClient, type LiveSubscription } from "../test/support/live.js";
import { startStack, type TestAccount, type TestStack } from "../test/support/stack.js";
import { figures, ms, ok, table } from "./support/measure.js";

const CLIENTS = Number(process.env.BENCH_SUBSCRIBERS ?? 1_000);
const WARMUP_EVENTS = 3;
const EVENTS = 20;
// With `dataset { id slug }` selected: one dataset read per subscriber and event.
const NESTED_EVENTS = 5;
// Every event must reach every client within this, or the bench fails (a bound, not a figure).
const EVENT_TIMEOUT_MS = 30_000;
// Clients connect in waves of this many at once.
const CONNECT_WAVE = 100;

let apiA: TestStack;
let apiB: TestStack;
let buyer: TestAccount;
let datasetId: string;
let rawDatasetId: string;
const clients: LiveClient[] = [];

beforeAll(async () => {
  apiA = await startStack();
  apiB = await startStack({}, { sharing: apiA });
  const admin = await apiA.admin();
  const publisher = await apiA.signup("Fanout Publisher", "PUBLISHER");
  buyer = await apiA.signup("Fanout Buyer");
  // Each connection and each subscription is a request against the buyer key's rate limit.
  ok(
    await apiA.graphql(
      SetAccountPlanDocument,
      { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 1_000_000 },
      admin.headers,
    ),
  );
  const created = ok(
    await apiA.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug: "fanout",
          title: "Fan-out",
          category: "bench",
          access: "OPEN",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "INT64", nullable: false }],
        },
      },
      publisher.headers,
    ),
  );
  datasetId = created.createDataset.id;
  rawDatasetId = decodeGlobalId(datasetId).id;
  ok(await apiA.graphql(PublishDatasetDocument, { id: datasetId }, publisher.headers));
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.dispose()));
  await apiB?.close();
  await apiA?.close();
});

/** One subscription per client; resolves once both processes count them all as listening. */
async function subscribeAll<TVars>(
  document: TypedDocumentNode<{ datasetUpdated: { eventId: string } }, TVars>,
  variables: TVars,
) {
  const subscriptions = clients.map((client) => client.subscribe(document, variables));
  await until(
    () => apiA.app.live.active + apiB.app.live.active === clients.length,
    EVENT_TIMEOUT_MS,
    "every subscription",
  );
  return subscriptions;
}

/**
 * Publishes `warmup + events` events on A, one at a time, each once every client received the
 * previous one; the delays of the timed ones, per receipt and per event's last receipt.
 */
async function fanOut(
  subscriptions: LiveSubscription<{ datasetUpdated: { eventId: string } }>[],
  warmup: number,
  events: number,
) {
  const delays: number[] = [];
  const lastDelays: number[] = [];
  // Checked once at the end: vitest's expect() on each of 20,000 receipts would be measured too.
  let wrong = 0;
  for (let round = 0; round < warmup + events; round++) {
    const event = newEvent<DatasetUpdated>("dataset.updated", {
      datasetId: rawDatasetId,
      accountId: "00000000-0000-0000-0000-000000000000",
      version: round + 1,
      rowCount: 1000,
      changedRows: 1,
      cause: "PIPELINE_RUN",
      runId: null,
    });
    let publishedAt = 0;
    // Every client waits for the event before it is published.
    const received = Promise.all(
      subscriptions.map(async (subscription) => {
        const result = await subscription.next(EVENT_TIMEOUT_MS);
        const delay = performance.now() - publishedAt;
        if (result.data?.datasetUpdated.eventId !== event.id) wrong++;
        return delay;
      }),
    );
    publishedAt = performance.now();
    await apiA.app.services.events.publish(event);
    const roundDelays = await received;
    if (round >= warmup) {
      delays.push(...roundDelays);
      lastDelays.push(Math.max(...roundDelays));
    }
  }
  expect(wrong).toBe(0);
  for (const subscription of subscriptions) expect(subscription.pending).toEqual([]);
  return { delays, lastDelays };
}

const p99 = (samples: number[]) => {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(0.99 * sorted.length) - 1)]!;
};

const row = (label: string, over: string, samples: number[]) => {
  const f = figures(label, over, samples);
  return [f.label, f.path, String(f.count), ms(f.p50), ms(f.p95), ms(p99(samples)), ms(f.mean)];
};

it(`fan-out of one event to ${CLIENTS} subscribers on two API processes`, async () => {
  // Connect: connection_init authenticated and acknowledged, in waves.
  const connectMs: number[] = [];
  const connectStart = performance.now();
  for (let from = 0; from < CLIENTS; from += CONNECT_WAVE) {
    await Promise.all(
      Array.from({ length: Math.min(CONNECT_WAVE, CLIENTS - from) }, async (_, k) => {
        const stack = (from + k) % 2 === 0 ? apiA : apiB;
        const t = performance.now();
        const client = liveClient(stack, { "x-api-key": buyer.secret });
        clients.push(client);
        await client.connected;
        connectMs.push(performance.now() - t);
      }),
    );
  }
  const connectSeconds = (performance.now() - connectStart) / 1000;

  const subscribeStart = performance.now();
  const flat = await subscribeAll(DatasetUpdatedFlatDocument, { datasetId });
  const subscribeSeconds = (performance.now() - subscribeStart) / 1000;
  const flatDelays = await fanOut(flat, WARMUP_EVENTS, EVENTS);
  for (const subscription of flat) subscription.unsubscribe();
  await until(() => apiA.app.live.active + apiB.app.live.active === 0, EVENT_TIMEOUT_MS, "unsubscribed");

  const nested = await subscribeAll(DatasetUpdatedDocument, { datasetId });
  const nestedDelays = await fanOut(nested, 1, NESTED_EVENTS);

  console.log(
    [
      `subscriptions bench: ${CLIENTS} graphql-ws clients, ${CLIENTS / 2} on each of two API processes sharing Redis`,
      `node ${process.version}, ${cpus().length} cores`,
      `connected ${CLIENTS} clients in ${connectSeconds.toFixed(2)} s (waves of ${CONNECT_WAVE}); subscribed all in ${subscribeSeconds.toFixed(2)} s`,
      `events published one at a time on process A, each to every client (ms): ${EVENTS} with the flat`,
      `selection (after ${WARMUP_EVENTS} warm-up events), then ${NESTED_EVENTS} with dataset { id slug } (after 1)`,
      table(
        ["measure", "over", "n", "p50", "p95", "p99", "mean"],
        [
          row("connect (connection_init → ack)", "per client", connectMs),
          row("flat: publish → receipt", "per client per event", flatDelays.delays),
          row("flat: publish → last receipt", "per event", flatDelays.lastDelays),
          row("nested: publish → receipt", "per client per event", nestedDelays.delays),
          row("nested: publish → last receipt", "per event", nestedDelays.lastDelays),
        ],
      ),
    ].join("\n"),
  );
});
