// Signed webhooks on the real stack: events published on the app's bus, sent by an in-process
// worker (first tries claimed from their table, retries as pg-boss jobs), a loopback HTTP
// receiver, and every signature checked with `standardwebhooks` (the reference implementation of
// the spec, not ours). Retries run on a schedule of seconds.
import { getOperationAST } from "graphql";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newEvent, type DomainEvent } from "../../src/events/events.js";
import { WAKE_CHANNEL } from "../../src/deliveries/webhook.dispatcher.js";
import { listen, Wake } from "../../src/deliveries/webhook.wake.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDeliveryDocument,
  DeleteDeliveryDocument,
  DeliveriesDocument,
  DeliveryAttemptsDocument,
  PauseDeliveryDocument,
  RedeliverDocument,
  ResumeDeliveryDocument,
  RotateDeliverySecretDocument,
  TriggerDeliveryDocument,
  UpdateDeliveryDocument,
  PurchaseDatasetDocument,
  SetLowCreditThresholdDocument,
  TopUpCreditsDocument,
  type CreateDeliveryInput,
  type DeliveryAttemptFieldsFragment,
  type DeliveryAttemptsQuery,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

const SCHEDULE_MS = [1000, 1000, 2000];
const DISABLE_AFTER = 6;

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  status: number;
}

/** A loopback webhook receiver; each path answers what its handler says (200 by default). */
class Receiver {
  readonly received: Received[] = [];
  readonly answers = new Map<string, () => number>();
  private server!: Server;
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const path = req.url ?? "/";
        const status = this.answers.get(path)?.() ?? 200;
        this.received.push({
          path,
          headers: req.headers,
          body: Buffer.concat(chunks).toString("utf8"),
          status,
        });
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(status < 300 ? "thanks" : `receiver is down (${status})`);
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  at(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }

  async close(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }
}

let stack: TestStack;
let publisher: TestAccount;
const receiver = new Receiver();
/** Every GraphQL response body of this file, for the secrets scan. */
const responses: { operation: string; text: string }[] = [];
/** Every secret made or given in this file. */
const secrets = new Set<string>();

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

function errorOf(res: GraphQLResponse<unknown>) {
  expect(res.errors, "an error was expected").toHaveLength(1);
  return res.errors![0]!;
}

const prisma = () => stack.app.stores.prisma;

let datasetCount = 0;
/** A published dataset of the test publisher. */
async function dataset(access: "OPEN" | "PURCHASED" = "OPEN") {
  const n = ++datasetCount;
  const row = await prisma().dataset.create({
    data: {
      accountId: publisher.rawAccountId,
      slug: `hooks_${n}`,
      title: `Hooks ${n}`,
      category: "webhooks",
      columns: [{ name: "id", type: "STRING", nullable: false }],
      keyColumns: ["id"],
      status: "PUBLISHED",
      access,
      pricePer100Records: 0n,
      purchasePrice: access === "PURCHASED" ? 100n : null,
      purchaseTerm: access === "PURCHASED" ? "ONE_TIME" : null,
      tableName: `hooks_${n}`,
      version: 3,
      rowCount: 42n,
    },
  });
  return { ...row, globalId: encodeGlobalId("Dataset", row.id) };
}

async function webhook(
  owner: TestAccount,
  datasetId: string,
  path: string,
  extra: Partial<CreateDeliveryInput> = {},
) {
  const res = await stack.graphql(
    CreateDeliveryDocument,
    { input: { datasetId, kind: "WEBHOOK", config: { url: `${receiver.url}${path}` }, ...extra } },
    owner.headers,
  );
  const { delivery, signingSecret } = ok(res).createDelivery;
  expect(signingSecret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
  secrets.add(signingSecret!);
  return { id: delivery.id, rawId: decodeGlobalId(delivery.id).id, secret: signingSecret!, delivery };
}

async function publish<E extends DomainEvent>(type: E["type"], data: E["data"]): Promise<E> {
  const event = newEvent<E>(type, data);
  await stack.app.services.events.publish(event);
  return event;
}

const datasetUpdated = (datasetId: string) =>
  publish("dataset.updated", {
    datasetId,
    accountId: publisher.rawAccountId,
    version: 4,
    rowCount: 50,
    changedRows: 8,
    cause: "PIPELINE_RUN",
    runId: null,
  });

async function attempts(owner: TestAccount, deliveryId: string): Promise<DeliveryAttemptFieldsFragment[]> {
  const all: DeliveryAttemptFieldsFragment[] = [];
  let after: string | null = null;
  for (;;) {
    const res: DeliveryAttemptsQuery = ok(
      await stack.graphql(DeliveryAttemptsDocument, { id: deliveryId, first: 100, after }, owner.headers),
    );
    if (res.node?.__typename !== "Delivery") throw new Error("not a delivery");
    all.push(...res.node.attempts.edges.map((e) => e.node));
    if (!res.node.attempts.pageInfo.hasNextPage) return all;
    after = res.node.attempts.pageInfo.endCursor ?? null;
  }
}

async function deliveryState(owner: TestAccount, deliveryId: string) {
  const res = ok(await stack.graphql(DeliveryAttemptsDocument, { id: deliveryId, first: 1 }, owner.headers));
  if (res.node?.__typename !== "Delivery") throw new Error("not a delivery");
  return res.node;
}

/** Verifies a received request with the reference implementation; returns the envelope. */
function verified(request: Received, secret: string) {
  const headers = {
    "webhook-id": String(request.headers["webhook-id"]),
    "webhook-timestamp": String(request.headers["webhook-timestamp"]),
    "webhook-signature": String(request.headers["webhook-signature"]),
  };
  return new Webhook(secret).verify(request.body, headers) as {
    type: string;
    timestamp: string;
    data: Record<string, unknown>;
  };
}

beforeAll(async () => {
  await receiver.start();
  stack = await startStack(
    {
      OUTBOUND_ALLOW_CIDRS: "127.0.0.0/8,::1/128",
      WEBHOOK_RETRY_SCHEDULE: SCHEDULE_MS.map((ms) => `${ms}ms`).join(","),
      WEBHOOK_RETRY_JITTER: "0.1",
      WEBHOOK_DISABLE_AFTER_FAILURES: String(DISABLE_AFTER),
      WEBHOOK_TIMEOUT_MS: "2000",
    },
    { worker: true },
  );
  const graphql = stack.graphql.bind(stack);
  stack.graphql = async (document, variables, headers) => {
    const res = await graphql(document, variables, headers);
    const operation = getOperationAST(document)?.name?.value ?? "?";
    responses.push({ operation, text: JSON.stringify(res) });
    return res;
  };
  publisher = await stack.signup("Hook publisher", "PUBLISHER");
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await receiver.close();
});

describe("webhooks", () => {
  it("reach a receiver that was down for the first tries, every event exactly once by webhook-id, signed", async () => {
    const buyer = await stack.signup("Hook buyer", "BUYER");
    const { globalId, id } = await dataset();
    const hook = await webhook(buyer, globalId, "/flaky");
    let down = true;
    receiver.answers.set("/flaky", () => (down ? 503 : 200));

    const events = [];
    for (let i = 0; i < 5; i++) events.push(await datasetUpdated(id));
    const ids = events.map((e) => e.id).sort();
    // Every event has failed at least once before the receiver comes back.
    await until("a failed try of every event", async () => {
      const failed = await prisma().deliveryAttempt.findMany({
        where: { deliveryId: hook.rawId, status: "FAILED" },
        distinct: ["eventId"],
      });
      return failed.length === events.length;
    });
    down = false;
    await until("every event delivered", async () => {
      const done = await prisma().deliveryAttempt.count({
        where: { deliveryId: hook.rawId, status: "SUCCEEDED" },
      });
      return done === events.length;
    });

    const requests = receiver.at("/flaky");
    const accepted = requests.filter((r) => r.status === 200);
    expect(accepted.map((r) => r.headers["webhook-id"]).sort()).toEqual(ids);
    expect(requests.filter((r) => r.status === 503).length).toBeGreaterThanOrEqual(events.length);
    for (const request of requests) {
      const envelope = verified(request, hook.secret);
      expect(envelope).toEqual({
        type: "dataset.updated",
        timestamp: events.find((e) => e.id === request.headers["webhook-id"])!.occurredAt,
        data: { datasetId: globalId, version: 4, rowCount: 50, changedRows: 8, cause: "PIPELINE_RUN" },
      });
      expect(request.headers["content-type"]).toBe("application/json");
      // Retries send the very same bytes.
      const first = requests.find((r) => r.headers["webhook-id"] === request.headers["webhook-id"])!;
      expect(request.body).toBe(first.body);
    }

    const history = await attempts(buyer, hook.id);
    expect(history).toHaveLength(requests.length);
    for (const eventId of ids) {
      const tries = history.filter((a) => a.eventId === eventId).sort((a, b) => a.attempt - b.attempt);
      expect(tries.map((t) => t.attempt)).toEqual(tries.map((_, i) => i + 1));
      expect(tries.at(-1)).toMatchObject({
        status: "SUCCEEDED",
        httpStatus: 200,
        responseExcerpt: "thanks",
        error: null,
      });
      for (const failed of tries.slice(0, -1)) {
        expect(failed).toMatchObject({
          status: "FAILED",
          httpStatus: 503,
          responseExcerpt: "receiver is down (503)",
          error: "answered 503",
          eventType: "dataset.updated",
        });
        const wait = Date.parse(failed.nextAttemptAt!) - Date.parse(failed.createdAt);
        expect(wait).toBeGreaterThanOrEqual(SCHEDULE_MS[failed.attempt - 1]! * 0.9 - 50);
        expect(wait).toBeLessThanOrEqual(SCHEDULE_MS[failed.attempt - 1]! * 1.1 + 3000);
      }
      expect(tries.every((t) => t.durationMs !== null && t.durationMs >= 0)).toBe(true);
    }
    const state = await deliveryState(buyer, hook.id);
    expect(state).toMatchObject({ status: "ACTIVE", consecutiveFailures: 0 });

    // Publishing the same event again sends nothing more: one job per (delivery, event).
    await stack.app.services.events.publish(events[0]!);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at("/flaky")).toHaveLength(requests.length);
  }, 60_000);

  it("gives up after the schedule (DEAD) and tells the account's other webhooks with delivery.failed", async () => {
    const buyer = await stack.signup("Dead buyer", "BUYER");
    const { globalId, id } = await dataset();
    const hook = await webhook(buyer, globalId, "/always-500");
    const watcher = await webhook(buyer, globalId, "/watch-dead", { eventTypes: ["delivery.failed"] });
    receiver.answers.set("/always-500", () => 500);

    const event = await datasetUpdated(id);
    const tries = SCHEDULE_MS.length + 1;
    await until("the event given up", async () => {
      const dead = await prisma().deliveryAttempt.findFirst({
        where: { deliveryId: hook.rawId, status: "DEAD" },
      });
      return dead !== null;
    });
    const history = await attempts(buyer, hook.id);
    expect(history.map((a) => [a.attempt, a.status, a.httpStatus])).toEqual([
      [1, "FAILED", 500],
      [2, "FAILED", 500],
      [3, "FAILED", 500],
      [4, "DEAD", 500],
    ]);
    expect(history.at(-1)!.nextAttemptAt).toBeNull();
    expect(receiver.at("/always-500")).toHaveLength(tries);

    const told = await until("delivery.failed at the watcher", () => receiver.at("/watch-dead")[0]);
    expect(verified(told, watcher.secret)).toMatchObject({
      type: "delivery.failed",
      data: {
        deliveryId: hook.id,
        eventId: event.id,
        disabled: false,
        reason: expect.stringContaining("answered 500"),
      },
    });
    // The watcher subscribed to delivery.failed only: it never got the dataset event itself.
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.at("/watch-dead")).toHaveLength(1);
    expect((await deliveryState(buyer, hook.id)).status).toBe("ACTIVE");
  }, 60_000);

  it("disables an endpoint failing N times in a row, tells its owner, and resume sends what is owed", async () => {
    const buyer = await stack.signup("Disabled buyer", "BUYER");
    const { globalId, id } = await dataset();
    // A port nobody listens on.
    const closed = new Receiver();
    await closed.start();
    const deadUrl = `${closed.url}/gone`;
    await closed.close();
    const res = await stack.graphql(
      CreateDeliveryDocument,
      { input: { datasetId: globalId, kind: "WEBHOOK", config: { url: deadUrl } } },
      buyer.headers,
    );
    const hook = ok(res).createDelivery;
    secrets.add(hook.signingSecret!);
    const hookId = hook.delivery.id;
    const rawId = decodeGlobalId(hookId).id;
    const watcher = await webhook(buyer, globalId, "/watch-disabled", { eventTypes: ["delivery.failed"] });

    const events = [await datasetUpdated(id), await datasetUpdated(id)];
    const disabledNotice = await until("the disable notice", () =>
      receiver.at("/watch-disabled").find((r) => verified(r, watcher.secret).data.disabled === true),
    );
    expect(verified(disabledNotice, watcher.secret).data).toMatchObject({
      deliveryId: hookId,
      reason: `disabled after ${DISABLE_AFTER} failed tries in a row`,
    });
    const state = await deliveryState(buyer, hookId);
    expect(state).toMatchObject({ status: "DISABLED" });
    expect(state.consecutiveFailures).toBeGreaterThanOrEqual(DISABLE_AFTER);
    const logged = stack.logs.find(
      (l) => l.msg === "delivery disabled after failing too many times in a row",
    );
    expect(logged).toMatchObject({ deliveryId: rawId, accountId: buyer.rawAccountId });
    const refused = (await attempts(buyer, hookId)).filter((a) => a.status !== "PENDING");
    expect(refused.every((a) => a.httpStatus === null && /ECONNREFUSED/.test(a.error ?? ""))).toBe(true);

    // Events still owed: those whose last try is FAILED (a retry was due).
    const latest = new Map<string, DeliveryAttemptFieldsFragment>();
    for (const a of await attempts(buyer, hookId)) {
      if ((latest.get(a.eventId)?.attempt ?? 0) < a.attempt) latest.set(a.eventId, a);
    }
    const owed = [...latest.values()].filter((a) => a.status === "FAILED").map((a) => a.eventId);
    expect(owed.length).toBeGreaterThan(0);
    // Their retries come due while the delivery is off and are held, not sent.
    await until("retries held", () => {
      const held = stack.logs.filter(
        (l) => l.msg === "webhook held: delivery not active" && l.deliveryId === rawId,
      );
      return held.length >= owed.length;
    });

    // The buyer fixes the URL and resumes: the owed events arrive, once each.
    ok(
      await stack.graphql(
        UpdateDeliveryDocument,
        { id: hookId, input: { config: { url: `${receiver.url}/back` } } },
        buyer.headers,
      ),
    );
    const resumed = ok(
      await stack.graphql(ResumeDeliveryDocument, { id: hookId }, buyer.headers),
    ).resumeDelivery;
    expect(resumed).toMatchObject({ status: "ACTIVE", consecutiveFailures: 0 });
    await until("owed events delivered", () => receiver.at("/back").length >= owed.length);
    await new Promise((r) => setTimeout(r, 2500));
    const back = receiver.at("/back");
    expect(back.map((r) => r.headers["webhook-id"]).sort()).toEqual([...owed].sort());
    for (const r of back) expect(verified(r, hook.signingSecret!).type).toBe("dataset.updated");
    expect(events.map((e) => e.id)).toEqual(expect.arrayContaining(owed));
  }, 60_000);

  it("redelivers an attempt's event: same webhook-id, same body, a new attempt", async () => {
    const buyer = await stack.signup("Redeliver buyer", "BUYER");
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/redeliver");
    const { eventId } = ok(
      await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers),
    ).triggerDelivery;
    const first = await until("the triggered event", () => receiver.at("/redeliver")[0]);
    expect(first.headers["webhook-id"]).toBe(eventId);
    expect(verified(first, hook.secret)).toMatchObject({
      type: "dataset.updated",
      data: { datasetId: globalId, version: 3, rowCount: 42, changedRows: 0, cause: "TRIGGER" },
    });
    const [attempt] = await until("the attempt recorded", async () => {
      const list = await attempts(buyer, hook.id);
      return list[0]?.status === "SUCCEEDED" ? list : null;
    });

    const again = ok(
      await stack.graphql(RedeliverDocument, { attemptId: attempt!.id }, buyer.headers),
    ).redeliver;
    expect(again).toEqual({ eventId, delivery: { id: hook.id } });
    const second = await until("the redelivery", () => receiver.at("/redeliver")[1]);
    expect(second.headers["webhook-id"]).toBe(eventId);
    expect(second.body).toBe(first.body);
    verified(second, hook.secret);
    const history = await until("the new attempt", async () => {
      const list = await attempts(buyer, hook.id);
      return list.length === 2 && list[1]!.status === "SUCCEEDED" ? list : null;
    });
    expect(history.map((a) => [a.eventId, a.attempt, a.status])).toEqual([
      [eventId, 1, "SUCCEEDED"],
      [eventId, 2, "SUCCEEDED"],
    ]);

    // Paused: no trigger, no redelivery; events are not sent.
    ok(await stack.graphql(PauseDeliveryDocument, { id: hook.id }, buyer.headers));
    for (const res of [
      await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers),
      await stack.graphql(RedeliverDocument, { attemptId: attempt!.id }, buyer.headers),
    ]) {
      expect(errorOf(res).extensions).toMatchObject({ code: "CONFLICT", status: "PAUSED" });
    }
    await datasetUpdated(decodeGlobalId(globalId).id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at("/redeliver")).toHaveLength(2);
  }, 30_000);

  it("makes each try once, even when two jobs for it run together, and takes over an abandoned one", async () => {
    const buyer = await stack.signup("Once buyer", "BUYER");
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/once");
    const { eventId } = ok(
      await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers),
    ).triggerDelivery;
    await until("the first try", async () => (await attempts(buyer, hook.id))[0]?.status === "SUCCEEDED");
    const { webhooks } = stack.app.services;

    // A retry and a resume racing for try 2: one sends.
    const second = { deliveryId: hook.rawId, eventId, attempt: 2, firstAttempt: 2 };
    await Promise.all([webhooks.send(second), webhooks.send(second), webhooks.send(second)]);
    expect(receiver.at("/once")).toHaveLength(2);
    await webhooks.send(second);
    expect(receiver.at("/once")).toHaveLength(2);

    // Try 3 was claimed by a process that died mid-send long ago: the next job for it sends it.
    await prisma().deliveryAttempt.create({
      data: {
        deliveryId: hook.rawId,
        eventId,
        eventType: "dataset.updated",
        attempt: 3,
        status: "PENDING",
        createdAt: new Date(Date.now() - 10 * 60_000),
      },
    });
    await webhooks.send({ ...second, attempt: 3, firstAttempt: 3 });
    expect(receiver.at("/once")).toHaveLength(3);
    expect(new Set(receiver.at("/once").map((r) => r.headers["webhook-id"]))).toEqual(new Set([eventId]));
    const history = await attempts(buyer, hook.id);
    expect(history.map((a) => [a.attempt, a.status])).toEqual([
      [1, "SUCCEEDED"],
      [2, "SUCCEEDED"],
      [3, "SUCCEEDED"],
    ]);
  });

  it("takes over a first try whose worker died once its lease runs out, and leaves a running one", async () => {
    const buyer = await stack.signup("Lease buyer", "BUYER");
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/lease");
    /** An event queued and claimed (leased, its try PENDING) by a worker, `ago` ms ago. */
    const claimedBy = async (eventId: string, ago: number, leaseLeft: number) => {
      const claimedAt = new Date(Date.now() - ago);
      await prisma().$transaction([
        prisma().deliveryAttempt.create({
          data: {
            deliveryId: hook.rawId,
            eventId,
            eventType: "dataset.updated",
            attempt: 1,
            status: "PENDING",
            createdAt: claimedAt,
          },
        }),
        prisma().deliveryEvent.create({
          data: {
            deliveryId: hook.rawId,
            eventId,
            eventType: "dataset.updated",
            body: JSON.stringify({ type: "dataset.updated", timestamp: claimedAt.toISOString(), data: {} }),
            firstTry: { create: { leaseUntil: new Date(Date.now() + leaseLeft) } },
          },
        }),
      ]);
    };
    const { webhooks } = stack.app.services;

    // Claimed a second ago, its send may still be running: left alone.
    await claimedBy("evt_running", 1000, 60_000);
    await webhooks.sendQueued();
    expect(receiver.at("/lease")).toHaveLength(0);
    expect(await prisma().webhookFirstTry.count({ where: { storedEvent: { deliveryId: hook.rawId } } })).toBe(
      1,
    );

    // Claimed ten minutes ago by a worker that died: the workers claim it again and send it, once.
    await claimedBy("evt_abandoned", 10 * 60_000, -60_000);
    await until("the abandoned try sent", () => receiver.at("/lease").length > 0);
    expect(receiver.at("/lease").map((r) => r.headers["webhook-id"])).toEqual(["evt_abandoned"]);
    await until("its attempt recorded", async () =>
      (await attempts(buyer, hook.id)).some((a) => a.eventId === "evt_abandoned" && a.status === "SUCCEEDED"),
    );
    const left = await prisma().webhookFirstTry.findMany({
      where: { storedEvent: { deliveryId: hook.rawId } },
      select: { storedEvent: { select: { eventId: true } } },
    });
    expect(left.map((q) => q.storedEvent.eventId)).toEqual(["evt_running"]);
  });

  it("wakes the workers when first tries are queued, without a poll", async () => {
    const buyer = await stack.signup("Wake buyer", "BUYER");
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/wake");
    const wake = new Wake();
    const unlisten = await listen(stack.app.config.DATABASE_URL, WAKE_CHANNEL, wake, stack.app.log);
    try {
      const rings = wake.rings;
      await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers);
      // Bounded only so that a missing NOTIFY fails the test instead of hanging it.
      await wake.wait(rings, 30_000);
      expect(wake.rings).toBeGreaterThan(rings);
    } finally {
      await unlisten();
    }
  });

  it("rotates the signing secret: both verify during the window, only the new one after", async () => {
    const buyer = await stack.signup("Rotating buyer", "BUYER");
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/rotate");
    const rotated = ok(
      await stack.graphql(RotateDeliverySecretDocument, { id: hook.id, graceSeconds: 3 }, buyer.headers),
    ).rotateDeliverySecret;
    const newSecret = rotated.signingSecret!;
    secrets.add(newSecret);
    expect(newSecret).not.toBe(hook.secret);
    const windowEnds = Date.parse(rotated.delivery.previousSecretExpiresAt!);
    expect(windowEnds - Date.now()).toBeGreaterThan(1000);

    ok(await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers));
    const during = await until("a send during the window", () => receiver.at("/rotate")[0]);
    expect(String(during.headers["webhook-signature"]).split(" ")).toHaveLength(2);
    verified(during, hook.secret);
    verified(during, newSecret);

    await new Promise((r) => setTimeout(r, Math.max(0, windowEnds - Date.now() + 200)));
    ok(await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers));
    const after = await until("a send after the window", () => receiver.at("/rotate")[1]);
    expect(String(after.headers["webhook-signature"]).split(" ")).toHaveLength(1);
    verified(after, newSecret);
    expect(() => verified(after, hook.secret)).toThrow();
  }, 30_000);

  it("sends each event type to whom it concerns, with the secret headers the owner set", async () => {
    const buyer = await stack.signup("Routing buyer", "BUYER");
    const { globalId, id } = await dataset();
    const buyerHook = await webhook(buyer, globalId, "/buyer-all", {
      config: { url: `${receiver.url}/buyer-all`, headers: { "x-tenant": "routing" } },
      secrets: { headers: { authorization: "Bearer receiver-token-123" } },
    });
    secrets.add("receiver-token-123");
    const publisherHook = await webhook(publisher, globalId, "/publisher-runs", {
      eventTypes: ["pipeline.run.succeeded", "pipeline.run.failed"],
    });
    // A buyer cannot ask for a publisher's run events.
    const refused = await stack.graphql(
      CreateDeliveryDocument,
      {
        input: {
          datasetId: globalId,
          kind: "WEBHOOK",
          config: { url: `${receiver.url}/x` },
          eventTypes: ["pipeline.run.failed", "nope"],
        },
      },
      buyer.headers,
    );
    expect(errorOf(refused).extensions).toMatchObject({
      code: "BAD_USER_INPUT",
      problems: [
        "eventTypes: pipeline.run.failed is only for the dataset's publisher",
        'eventTypes: unknown event type "nope"',
      ],
    });

    const run = await publish("pipeline.run.succeeded", {
      runId: "0190a000-0000-7000-8000-000000000001",
      pipelineId: "0190a000-0000-7000-8000-000000000002",
      datasetId: id,
      accountId: publisher.rawAccountId,
      rowsRead: 10,
      rowsWritten: 9,
      rowsRejected: 1,
      error: null,
    });
    const low = await publish("credits.low", {
      accountId: buyer.rawAccountId,
      balance: "5",
      threshold: "10",
    });
    const runReceived = await until("the run event", () => receiver.at("/publisher-runs")[0]);
    expect(verified(runReceived, publisherHook.secret)).toEqual({
      type: "pipeline.run.succeeded",
      timestamp: run.occurredAt,
      data: {
        runId: encodeGlobalId("PipelineRun", "0190a000-0000-7000-8000-000000000001"),
        pipelineId: encodeGlobalId("Pipeline", "0190a000-0000-7000-8000-000000000002"),
        datasetId: globalId,
        rowsRead: 10,
        rowsWritten: 9,
        rowsRejected: 1,
        error: null,
      },
    });
    const lowReceived = await until("credits.low", () => receiver.at("/buyer-all")[0]);
    expect(verified(lowReceived, buyerHook.secret)).toEqual({
      type: "credits.low",
      timestamp: low.occurredAt,
      data: { accountId: buyer.accountId, balance: "5", threshold: "10" },
    });
    expect(lowReceived.headers.authorization).toBe("Bearer receiver-token-123");
    expect(lowReceived.headers["x-tenant"]).toBe("routing");
    await new Promise((r) => setTimeout(r, 1000));
    // The buyer never hears of runs; the publisher's hook wanted runs only.
    expect(receiver.at("/buyer-all")).toHaveLength(1);
    expect(receiver.at("/publisher-runs")).toHaveLength(1);
  }, 30_000);

  it("stops sending a PURCHASED dataset's updates when the purchase is no longer active", async () => {
    const buyer = await stack.signup("Lapsing buyer", "BUYER");
    const admin = await stack.admin();
    ok(
      await stack.graphql(
        TopUpCreditsDocument,
        { accountId: buyer.accountId, amount: 1000, idempotencyKey: "lapsing" },
        admin.headers,
      ),
    );
    const bought = await dataset("PURCHASED");
    ok(await stack.graphql(PurchaseDatasetDocument, { datasetId: bought.globalId }, buyer.headers));
    const hook = await webhook(buyer, bought.globalId, "/lapsing");
    const first = await datasetUpdated(bought.id);
    await until("the update while entitled", () => receiver.at("/lapsing")[0]);
    await prisma().purchase.updateMany({
      where: { accountId: buyer.rawAccountId, datasetId: bought.id },
      data: { status: "EXPIRED" },
    });
    await datasetUpdated(bought.id);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.at("/lapsing").map((r) => r.headers["webhook-id"])).toEqual([first.id]);
    expect(verified(receiver.at("/lapsing")[0]!, hook.secret).type).toBe("dataset.updated");
  }, 30_000);

  it("refuses private targets at creation and at send time, and follows no redirect", async () => {
    const buyer = await stack.signup("SSRF buyer", "BUYER");
    const { globalId } = await dataset();
    for (const url of [
      "http://10.0.0.1/hook",
      "http://169.254.169.254/latest/meta-data",
      "http://[::ffff:192.168.0.1]/",
      "http://[fd00::1]/",
      "http://0.0.0.0:8080/",
      "http://224.0.0.1/",
    ]) {
      const res = await stack.graphql(
        CreateDeliveryDocument,
        { input: { datasetId: globalId, kind: "WEBHOOK", config: { url } } },
        buyer.headers,
      );
      const error = errorOf(res);
      expect(error.extensions?.code, url).toBe("BAD_USER_INPUT");
      expect(error.message).toMatch(
        /^Invalid delivery: config\.url: .* is not a public address \(\S+\); this server does not contact it$/,
      );
    }

    // A row whose target became private after it was checked (DNS can change) is refused when sending.
    const hook = await webhook(buyer, globalId, "/never");
    await prisma().delivery.update({
      where: { id: hook.rawId },
      data: { config: { url: "http://10.255.255.1/hook" } },
    });
    const { eventId } = ok(
      await stack.graphql(TriggerDeliveryDocument, { id: hook.id }, buyer.headers),
    ).triggerDelivery;
    const [first] = await until("the refused try", async () => {
      const list = await attempts(buyer, hook.id);
      return list[0] && list[0].status !== "PENDING" ? list : null;
    });
    expect(first).toMatchObject({ eventId, status: "FAILED", httpStatus: null });
    expect(first!.error).toBe(
      "refused: 10.255.255.1 is not a public address (private); this server does not contact it",
    );
    ok(await stack.graphql(DeleteDeliveryDocument, { id: hook.id }, buyer.headers));

    // A redirect is an answer, not an instruction.
    receiver.answers.set("/redirect", () => 307);
    const redirected = await webhook(buyer, globalId, "/redirect");
    ok(await stack.graphql(TriggerDeliveryDocument, { id: redirected.id }, buyer.headers));
    const [attempt] = await until("the redirect answer", async () => {
      const list = await attempts(buyer, redirected.id);
      return list[0] && list[0].status !== "PENDING" ? list : null;
    });
    expect(attempt).toMatchObject({ httpStatus: 307, error: "answered 307; redirects are not followed" });
    expect(receiver.at("/redirect")).toHaveLength(1);
  }, 30_000);

  it("checks settings and entitlement, and keeps SFTP and S3 credentials encrypted", async () => {
    const buyer = await stack.signup("Settings buyer", "BUYER");
    const open = await dataset();
    const bought = await dataset("PURCHASED");
    const input = (extra: Partial<CreateDeliveryInput>): { input: CreateDeliveryInput } => ({
      input: { datasetId: open.globalId, kind: "WEBHOOK", config: { url: `${receiver.url}/x` }, ...extra },
    });
    const bad = await stack.graphql(
      CreateDeliveryDocument,
      input({ config: { url: "ftp://x", headers: { "webhook-id": "x", "bad header": "y" } }, format: "CSV" }),
      buyer.headers,
    );
    expect(errorOf(bad).extensions?.problems).toEqual([
      "config.url: must be an http or https URL",
      "config.headers.webhook-id: is set by Datahus",
      "config.headers.bad header: is not a valid header name",
      "format: webhooks carry JSON events; leave it out",
    ]);
    const unpaid = await stack.graphql(
      CreateDeliveryDocument,
      input({ datasetId: bought.globalId }),
      buyer.headers,
    );
    expect(errorOf(unpaid).extensions).toMatchObject({ code: "FORBIDDEN", requiresPurchase: true });

    const password = "sftp-password-never-shown";
    const sftp = ok(
      await stack.graphql(
        CreateDeliveryDocument,
        input({
          kind: "SFTP",
          config: { host: "127.0.0.1", port: 1, username: "drop", folder: "/in" },
          secrets: { password },
          format: "CSV",
          gzip: true,
          schedule: "0 3 * * *",
        }),
        buyer.headers,
      ),
    ).createDelivery;
    secrets.add(password);
    expect(sftp.signingSecret).toBeNull();
    expect(sftp.delivery).toMatchObject({
      kind: "SFTP",
      config: { host: "127.0.0.1", port: 1, username: "drop", folder: "/in", timeoutMs: 30_000 },
      hasSecrets: true,
      format: "CSV",
      gzip: true,
      trigger: "SCHEDULE",
      schedule: "0 3 * * *",
      mode: "INCREMENTAL",
    });
    const row = await prisma().delivery.findUniqueOrThrow({
      where: { id: decodeGlobalId(sftp.delivery.id).id },
    });
    expect(row.secretsEncrypted).toMatch(/^v1\./);
    expect(row.secretsEncrypted).not.toContain(password);
    const noCreds = await stack.graphql(
      CreateDeliveryDocument,
      input({ kind: "S3", config: { bucket: "drops" }, format: "PARQUET" }),
      buyer.headers,
    );
    expect(errorOf(noCreds).extensions?.problems).toEqual([
      "secrets.accessKeyId: is required",
      "secrets.secretAccessKey: is required",
    ]);

    const listed = ok(
      await stack.graphql(DeliveriesDocument, { first: 10, datasetId: open.globalId }, buyer.headers),
    );
    expect(listed.deliveries.edges.map((e) => e.node.id)).toEqual([sftp.delivery.id]);
    ok(await stack.graphql(DeleteDeliveryDocument, { id: sftp.delivery.id }, buyer.headers));
    expect(await prisma().delivery.count({ where: { id: row.id } })).toBe(0);
  });
});

describe("credits.low", () => {
  it("is told once per crossing of the threshold the account set", async () => {
    const buyer = await stack.signup("Low buyer", "BUYER");
    const admin = await stack.admin();
    const { globalId } = await dataset();
    const hook = await webhook(buyer, globalId, "/low", { eventTypes: ["credits.low"] });
    let topUps = 0;
    const topUp = async (amount: number) =>
      ok(
        await stack.graphql(
          TopUpCreditsDocument,
          { accountId: buyer.accountId, amount, idempotencyKey: `low-${++topUps}` },
          admin.headers,
        ),
      );
    const buy = async () => {
      const { globalId: id } = await dataset("PURCHASED");
      return ok(await stack.graphql(PurchaseDatasetDocument, { datasetId: id }, buyer.headers))
        .purchaseDataset;
    };
    await topUp(300);
    const start = ok(await stack.graphql(SetLowCreditThresholdDocument, { threshold: null }, buyer.headers))
      .setLowCreditThreshold.creditBalance;
    const threshold = start - 150;
    const set = ok(await stack.graphql(SetLowCreditThresholdDocument, { threshold }, buyer.headers));
    expect(set.setLowCreditThreshold).toEqual({
      id: buyer.accountId,
      creditBalance: start,
      lowCreditThreshold: threshold,
    });

    expect((await buy()).balance).toBe(start - 100); // above: nothing
    expect((await buy()).balance).toBe(start - 200); // crosses: told
    const first = await until("the first credits.low", () => receiver.at("/low")[0]);
    expect(verified(first, hook.secret)).toMatchObject({
      type: "credits.low",
      data: { accountId: buyer.accountId, balance: String(start - 200), threshold: String(threshold) },
    });
    expect((await buy()).balance).toBe(start - 300); // still below: not told again
    await topUp(300); // back above: the next crossing is told
    await buy();
    await buy();
    const second = await until("the second credits.low", () => receiver.at("/low")[1]);
    expect(verified(second, hook.secret).data).toMatchObject({ balance: String(start - 200) });
    await new Promise((r) => setTimeout(r, 1000));
    expect(receiver.at("/low")).toHaveLength(2);

    // A metered read's charge (hold, then settle) is a debit too.
    await topUp(300); // back above again
    const { ledger } = stack.app.services.credits;
    const hold = await ledger.reserve(buyer.rawAccountId, 300n, { reference: "a metered read" });
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.at("/low")).toHaveLength(2); // a hold alone tells nothing
    const settled = await ledger.settle(hold, 300n);
    expect(settled.balance).toBe(BigInt(start - 200));
    const third = await until("the third credits.low", () => receiver.at("/low")[2]);
    expect(verified(third, hook.secret).data).toMatchObject({ balance: String(start - 200) });

    const bad = await stack.graphql(SetLowCreditThresholdDocument, { threshold: -1 }, buyer.headers);
    expect(errorOf(bad).extensions).toEqual({ code: "BAD_USER_INPUT", argument: "threshold" });
  }, 30_000);
});

describe("secrets", () => {
  it("appear in no response but the one that made them, and in no log line", () => {
    expect(secrets.size).toBeGreaterThan(8);
    const logs = stack.logText();
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(logs.includes(secret), "a secret in the logs").toBe(false);
      const carrying = responses.filter((r) => r.text.includes(secret));
      if (secret.startsWith("whsec_")) {
        expect(carrying).toHaveLength(1);
        expect(["CreateDelivery", "RotateDeliverySecret"]).toContain(carrying[0]!.operation);
      } else {
        expect(carrying).toEqual([]);
      }
    }
  });
});
