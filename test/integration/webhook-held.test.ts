// Events accepted for a webhook are never dropped by its state (finding 1 of issue 14): events
// whose first try found the delivery already disabled, and events that happen while it is paused,
// are held and sent on resume, each once and in the order they were accepted.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { newEvent, type DatasetUpdated } from "../../src/events/events.js";
import { WEBHOOK_QUEUE } from "../../src/deliveries/webhook.dispatcher.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDeliveryDocument,
  DeliveryAttemptsDocument,
  PauseDeliveryDocument,
  ResumeDeliveryDocument,
} from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

const DISABLE_AFTER = 3;

let stack: TestStack;
let publisher: TestAccount;
let server: Server;
let url = "";
let receiverUp = false;
const received: string[] = [];
/** Events the receiver answers 500 to while up. */
const refused = new Set<string>();

beforeAll(async () => {
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      const id = String(req.headers["webhook-id"]);
      const ok = receiverUp && !refused.has(id);
      if (ok) received.push(id);
      res.writeHead(ok ? 200 : receiverUp ? 500 : 503).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
  stack = await startStack(
    {
      // Retries far off: only resume sends again here.
      WEBHOOK_RETRY_SCHEDULE: "1h",
      WEBHOOK_DISABLE_AFTER_FAILURES: String(DISABLE_AFTER),
      // Several sends at once, so that only the resume's ordering keeps the held events in order.
      WEBHOOK_CONCURRENCY: "8",
    },
    { worker: true },
  );
  publisher = await stack.signup("Held publisher", "PUBLISHER");
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => server.close(resolve));
});

async function dataset(slug: string) {
  const row = await stack.app.stores.prisma.dataset.create({
    data: {
      accountId: publisher.rawAccountId,
      slug,
      title: "Held events",
      category: "webhooks",
      columns: [{ name: "id", type: "STRING", nullable: false }],
      keyColumns: ["id"],
      status: "PUBLISHED",
      access: "OPEN",
      pricePer100Records: 0n,
      tableName: slug,
      version: 1,
      rowCount: 1n,
    },
  });
  return row;
}

async function state(owner: TestAccount, id: string) {
  const res = await stack.graphql(DeliveryAttemptsDocument, { id, first: 100 }, owner.headers);
  if (res.data?.node?.__typename !== "Delivery") throw new Error(JSON.stringify(res.errors));
  return res.data.node;
}

/** Every event of the delivery stored (`count`), and none of its tries due, queued or running. */
async function settled(hookId: string, count: number) {
  const deliveryId = decodeGlobalId(hookId).id;
  const prisma = stack.app.stores.prisma;
  const stored = await prisma.deliveryEvent.count({ where: { deliveryId } });
  const firstTries = await prisma.webhookFirstTry.count({ where: { storedEvent: { deliveryId } } });
  const [due] = await prisma.$queryRawUnsafe<{ n: number }[]>(
    `SELECT count(*)::int AS n FROM "${stack.app.config.PGBOSS_SCHEMA}".job
      WHERE name = $1 AND data->>'deliveryId' = $2 AND state IN ('created', 'retry', 'active')
        AND start_after <= now()`,
    WEBHOOK_QUEUE,
    deliveryId,
  );
  return stored === count && firstTries === 0 && due!.n === 0;
}

/** A buyer's webhook to the receiver on a new dataset, and a way to publish its events. */
async function webhook(slug: string) {
  const ds = await dataset(slug);
  const buyer = await stack.signup(`Buyer of ${slug}`);
  const created = await stack.graphql(
    CreateDeliveryDocument,
    { input: { datasetId: encodeGlobalId("Dataset", ds.id), kind: "WEBHOOK", config: { url } } },
    buyer.headers,
  );
  const hookId = created.data!.createDelivery.delivery.id;
  const publish = async () => {
    const event = newEvent<DatasetUpdated>("dataset.updated", {
      datasetId: ds.id,
      accountId: publisher.rawAccountId,
      version: 2,
      rowCount: 1,
      changedRows: 1,
      cause: "PIPELINE_RUN",
      runId: null,
    });
    await stack.app.services.events.publish(event);
    return event.id;
  };
  return { buyer, hookId, publish };
}

it("holds events while disabled or paused and sends every one, once, on resume", async () => {
  const { buyer, hookId, publish } = await webhook("held_events");

  // The receiver is down: the first tries fail until the delivery disables itself; the events
  // accepted after that (while it was still ACTIVE when they were routed, or already DISABLED)
  // find it disabled.
  const events: string[] = [];
  for (let i = 0; i < 8; i++) events.push(await publish());
  // Polled once a second: the buyer's plan allows 60 requests a minute.
  await until(
    "the delivery disabled",
    async () => (await state(buyer, hookId)).status === "DISABLED",
    30_000,
    1000,
  );
  await until("every event stored, none with a try due", () => settled(hookId, events.length), 30_000);
  // Accepted while disabled: stored, held for the resume.
  for (let i = 0; i < 3; i++) events.push(await publish());

  // Resumed and paused again at once; events that happen while paused are held too.
  receiverUp = true;
  await stack.graphql(PauseDeliveryDocument, { id: hookId }, buyer.headers);
  for (let i = 0; i < 3; i++) events.push(await publish());
  await until("every event stored", () => settled(hookId, events.length), 30_000);
  expect(received).toEqual([]);

  const resumed = await stack.graphql(ResumeDeliveryDocument, { id: hookId }, buyer.headers);
  expect(resumed.data?.resumeDelivery.status).toBe("ACTIVE");
  await until("every held event sent", () => received.length >= events.length, 60_000);
  await new Promise((r) => setTimeout(r, 1500));
  // Each once, oldest first: the failed ones and those never tried alike.
  expect(received).toEqual(events);
}, 120_000);

/** A new webhook, paused with `count` events held; the receiver up and its log cleared. */
async function heldWebhook(slug: string, count: number) {
  const hook = await webhook(slug);
  receiverUp = true;
  received.length = 0;
  await stack.graphql(PauseDeliveryDocument, { id: hook.hookId }, hook.buyer.headers);
  const events: string[] = [];
  for (let i = 0; i < count; i++) events.push(await hook.publish());
  await until("every event stored", () => settled(hook.hookId, count), 30_000);
  return { ...hook, events };
}

it("sends the events held while paused in the order they were accepted", async () => {
  // Its own dataset: the delivery of the test above is active again.
  const { buyer, hookId, events } = await heldWebhook("ordered_events", 30);
  const resumed = await stack.graphql(ResumeDeliveryDocument, { id: hookId }, buyer.headers);
  expect(resumed.data?.resumeDelivery.status).toBe("ACTIVE");
  await until("every held event sent", () => received.length >= events.length, 60_000);
  await new Promise((r) => setTimeout(r, 1500));
  // Each once, and in acceptance order.
  expect(received).toEqual(events);
}, 120_000);

it("does not hold up a resumed backlog behind an event that fails: it keeps its own retries", async () => {
  const { buyer, hookId, events } = await heldWebhook("failing_events", 6);
  refused.add(events[2]!);
  await stack.graphql(ResumeDeliveryDocument, { id: hookId }, buyer.headers);
  const rest = events.filter((id) => id !== events[2]);
  await until("the events after the failing one sent", () => received.length >= rest.length, 60_000);
  expect(received).toEqual(rest);
  const failed = (await state(buyer, hookId)).attempts.edges
    .map((e) => e.node)
    .filter((a) => a.eventId === events[2]);
  expect(failed).toMatchObject([{ attempt: 1, status: "FAILED", httpStatus: 500 }]);
  // Its next try is on the retry schedule (1 h here), not right away.
  expect(new Date(failed[0]!.nextAttemptAt!).getTime()).toBeGreaterThan(Date.now() + 30 * 60_000);
}, 120_000);
