// Live subscriptions over graphql-ws on two API processes (two apps on their own ports, stores and
// Redis connections) sharing PostgreSQL, ClickHouse and a Redis prefix: an event published on one
// reaches subscribers connected to the other through Redis. Who may subscribe to what is decided
// at subscribe time, and a connection whose credential lapses is closed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { forwardLiveEvents } from "../../src/stores.js";
import {
  EventBus,
  newEvent,
  type DatasetUpdated,
  type DeliveryUpdated,
  type PipelineRunUpdated,
} from "../../src/events/events.js";
import { Encryption } from "../../src/db/encryption.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { AuthService } from "../../src/identity/auth.service.js";
import { isAuthenticated } from "../../src/identity/caller.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER, sign } from "../../src/identity/request-signing.js";
import {
  CreateApiKeyDocument,
  CreateSignedApiKeyDocument,
  CreateDatasetDocument,
  DatasetUpdatedDocument,
  DeliveryUpdatedDocument,
  LoginDocument,
  PipelineRunUpdatedDocument,
  PublishDatasetDocument,
  PurchaseDatasetDocument,
  RevokeApiKeyDocument,
  RotateApiKeyDocument,
  SetAccountPlanDocument,
  SuspendAccountDocument,
} from "../generated/graphql.js";
import { liveClient, until, type LiveClient } from "../support/live.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let apiA: TestStack;
let apiB: TestStack;
let publisher: TestAccount;
let otherPublisher: TestAccount;
let buyer: TestAccount;
let stranger: TestAccount;
let purchased: { id: string; raw: string };
let draft: { id: string; raw: string };
const clients: LiveClient[] = [];

const PASSWORD = "correct horse battery staple";
const env = { SUBSCRIPTION_RECHECK_SECONDS: "1" };

const connect = (stack: TestStack, params: Record<string, unknown>) => {
  const client = liveClient(stack, params);
  clients.push(client);
  return client;
};
const withKey = (stack: TestStack, account: TestAccount) => connect(stack, { "x-api-key": account.secret });
const code = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] }) =>
  result.errors?.[0]?.extensions?.code;

async function dataset(slug: string, access: "PURCHASED" | "OPEN", publish: boolean) {
  const created = await apiA.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: slug,
        category: "retail",
        access,
        ...(access === "PURCHASED" ? { purchasePrice: 10, purchaseTerm: "ONE_TIME" as const } : {}),
        keyColumns: ["id"],
        columns: [{ name: "id", type: "INT64", nullable: false }],
      },
    },
    publisher.headers,
  );
  expect(created.errors).toBeUndefined();
  const id = created.data!.createDataset.id;
  if (publish)
    expect((await apiA.graphql(PublishDatasetDocument, { id }, publisher.headers)).errors).toBeUndefined();
  return { id, raw: decodeGlobalId(id).id };
}

function datasetEvent(datasetId: string, version: number) {
  return newEvent<DatasetUpdated>("dataset.updated", {
    datasetId,
    accountId: publisher.rawAccountId,
    version,
    rowCount: 1000 + version,
    changedRows: 10,
    cause: "PIPELINE_RUN",
    runId: "0190f5d2-0000-7000-8000-000000000001",
  });
}

beforeAll(async () => {
  apiA = await startStack(env);
  apiB = await startStack(env, { sharing: apiA });
  publisher = await apiA.signup("Live Publisher", "PUBLISHER", PASSWORD);
  otherPublisher = await apiA.signup("Other Publisher", "PUBLISHER");
  buyer = await apiA.signup("Live Buyer", "BUYER", PASSWORD);
  stranger = await apiA.signup("Stranger", "BUYER");
  purchased = await dataset("live_purchased", "PURCHASED", true);
  draft = await dataset("live_draft", "OPEN", false);
  const bought = await apiA.graphql(PurchaseDatasetDocument, { datasetId: purchased.id }, buyer.headers);
  expect(bought.errors).toBeUndefined();
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.dispose()));
  await apiB?.close();
  await apiA?.close();
});

describe("datasetUpdated across API processes", () => {
  it("reaches a subscriber on process B when the event is published on process A", async () => {
    const onB = withKey(apiB, buyer);
    const onA = withKey(apiA, publisher);
    const viaB = onB.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    const viaA = onA.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    await until(() => apiB.app.live.active === 1 && apiA.app.live.active === 1, 5000, "both subscriptions");

    const event = datasetEvent(purchased.raw, 7);
    await apiA.app.services.events.publish(event);

    const expected = {
      datasetUpdated: {
        eventId: event.id,
        // Crossed Redis as a JSON string, made a Date again, serialized as DateTimeISO.
        occurredAt: event.occurredAt,
        datasetId: purchased.id,
        version: 7,
        rowCount: 1007,
        changedRows: 10,
        cause: "PIPELINE_RUN",
        runId: encodeGlobalId("PipelineRun", event.data.runId!),
        dataset: { id: purchased.id, slug: "live_purchased" },
      },
    };
    expect(await viaB.next()).toEqual({ data: expected });
    expect(await viaA.next()).toEqual({ data: expected });
    const metrics = await (await fetch(`${apiB.url}/metrics`)).text();
    expect(metrics).toMatch(/^datahus_live_connections 1$/m);
    expect(metrics).toMatch(/^datahus_live_subscriptions 1$/m);

    // Events about another dataset are not sent; the next one about this dataset is.
    await apiB.app.services.events.publish(datasetEvent(draft.raw, 1));
    const second = datasetEvent(purchased.raw, 8);
    await apiB.app.services.events.publish(second);
    expect((await viaB.next()).data?.datasetUpdated.eventId).toBe(second.id);
    expect((await viaA.next()).data?.datasetUpdated.eventId).toBe(second.id);

    viaA.unsubscribe();
    viaB.unsubscribe();
    await until(() => apiA.app.live.active === 0 && apiB.app.live.active === 0, 5000, "unsubscribed");
  });

  it("reaches subscribers when the event is published by a process without HTTP (a worker)", async () => {
    // What `datahus worker` wires: its own event bus forwarding to Redis, no PubSub of its own.
    const events = new EventBus(apiA.app.log);
    const publisher = forwardLiveEvents(apiA.app.config, apiA.app.log, events);
    try {
      const sub = withKey(apiB, buyer).subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
      await until(() => apiB.app.live.active === 1, 5000, "subscription");
      const event = datasetEvent(purchased.raw, 30);
      await events.publish(event);
      expect((await sub.next()).data?.datasetUpdated.eventId).toBe(event.id);
      sub.unsubscribe();
      await until(() => apiB.app.live.active === 0, 5000, "unsubscribed");
    } finally {
      await publisher?.quit();
    }
  });

  it("refuses, at subscribe time, a buyer who did not buy the dataset, and datasets they cannot see", async () => {
    const client = withKey(apiB, stranger);
    const notBought = client.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    const refused = await notBought.next();
    expect(refused.data).toBeUndefined();
    expect(refused.errors?.[0]).toMatchObject({
      message: "Buy this dataset first (purchaseDataset)",
      extensions: { code: "FORBIDDEN", requiresPurchase: true },
    });
    await notBought.ended;

    const unpublished = client.subscribe(DatasetUpdatedDocument, { datasetId: draft.id });
    expect(code(await unpublished.next())).toBe("NOT_FOUND");
    const malformed = client.subscribe(DatasetUpdatedDocument, { datasetId: "not-an-id" });
    expect(code(await malformed.next())).toBe("BAD_USER_INPUT");
    const wrongType = client.subscribe(DatasetUpdatedDocument, {
      datasetId: encodeGlobalId("Pipeline", purchased.raw),
    });
    expect(code(await wrongType.next())).toBe("BAD_USER_INPUT");
    expect(apiB.app.live.active).toBe(0);

    // Refused means nothing follows: an event about the dataset reaches no one here.
    await apiA.app.services.events.publish(datasetEvent(purchased.raw, 9));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(notBought.pending).toEqual([]);
  });
});

describe("connection_init", () => {
  it("closes connections without valid credentials with 4401, suspended accounts with 4403", async () => {
    expect(await connect(apiB, {}).closed).toMatchObject({ code: 4401 });
    expect(await connect(apiB, { "x-api-key": "dh_live_nope" }).closed).toEqual({
      code: 4401,
      reason: "Invalid API key",
    });
    expect(await connect(apiB, { authorization: "Bearer not.a.token" }).closed).toEqual({
      code: 4401,
      reason: "Invalid or expired token",
    });

    const admin = await apiA.admin();
    const suspended = await apiA.signup("Suspended Buyer");
    const done = await apiA.graphql(
      SuspendAccountDocument,
      { accountId: suspended.accountId },
      admin.headers,
    );
    expect(done.errors).toBeUndefined();
    expect(await withKey(apiB, suspended).closed).toEqual({ code: 4403, reason: "Account suspended" });
  });

  it("accepts a dashboard token as `authorization: Bearer`", async () => {
    const login = await apiA.graphql(LoginDocument, { email: buyer.email, password: PASSWORD });
    const client = connect(apiB, { authorization: `Bearer ${login.data!.login.token}` });
    await client.connected;
    const sub = client.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    await until(() => apiB.app.live.active === 1, 5000, "subscription");
    const event = datasetEvent(purchased.raw, 10);
    await apiA.app.services.events.publish(event);
    expect((await sub.next()).data?.datasetUpdated.eventId).toBe(event.id);
    sub.unsubscribe();
    await until(() => apiB.app.live.active === 0, 5000, "unsubscribed");
  });
});

describe("lapsed credentials", () => {
  it("closes the connection of a key revoked while connected (4401), and of an account suspended (4403)", async () => {
    const created = await apiA.graphql(CreateApiKeyDocument, { input: { name: "live" } }, buyer.headers);
    const { secret, apiKey } = created.data!.createApiKey;
    const client = connect(apiB, { "x-api-key": secret });
    await client.connected;
    const sub = client.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    await until(() => apiB.app.live.active === 1, 5000, "subscription");

    const revokedAt = Date.now();
    expect(
      (await apiA.graphql(RevokeApiKeyDocument, { id: apiKey.id }, buyer.headers)).errors,
    ).toBeUndefined();
    expect(await client.closed).toEqual({ code: 4401, reason: "API key revoked" });
    // Rechecked every second in this file.
    expect(Date.now() - revokedAt).toBeLessThan(3000);
    await sub.ended;
    await until(() => apiB.app.live.active === 0, 5000, "stream ended");

    const admin = await apiA.admin();
    const doomed = await apiA.signup("Doomed Buyer");
    const other = withKey(apiA, doomed);
    await other.connected;
    await apiA.graphql(SuspendAccountDocument, { accountId: doomed.accountId }, admin.headers);
    expect(await other.closed).toEqual({ code: 4403, reason: "Account suspended" });
  });
});

describe("AuthService.lapsed, the recheck of open connections", () => {
  it("finds expired and rotated-out keys, expired tokens and suspended accounts", async () => {
    const { services, stores, config } = apiA.app;
    const owner = await apiA.signup("Recheck Buyer", "BUYER", PASSWORD);
    const inAnHour = new Date(Date.now() + 3600_000).toISOString();
    const expiring = await apiA.graphql(
      CreateApiKeyDocument,
      { input: { name: "expiring", expiresAt: inAnHour } },
      owner.headers,
    );
    const rotating = await apiA.graphql(CreateApiKeyDocument, { input: { name: "rotating" } }, owner.headers);
    const rotated = await apiA.graphql(
      RotateApiKeyDocument,
      { id: rotating.data!.createApiKey.apiKey.id, graceSeconds: 60 },
      owner.headers,
    );
    expect(rotated.errors).toBeUndefined();
    const login = await apiA.graphql(LoginDocument, { email: owner.email, password: PASSWORD });
    const token = login.data!.login.token;
    const session = async (credentials: { apiKey?: string; authorization?: string }) => {
      const caller = await services.auth.authenticate(credentials);
      if (!isAuthenticated(caller)) throw new Error("test bug: not authenticated");
      return { caller, token: credentials.authorization?.slice("Bearer ".length) };
    };
    const sessions = [
      await session({ apiKey: owner.secret }),
      await session({ apiKey: expiring.data!.createApiKey.secret }),
      await session({ apiKey: rotating.data!.createApiKey.secret }),
      await session({ authorization: `Bearer ${token}` }),
    ];
    const at = (ms: number) =>
      new AuthService(
        stores.prisma,
        config,
        new Encryption(config.ENCRYPTION_KEY),
        { claim: async () => true },
        () => new Date(Date.now() + ms),
      );
    const messages = async (ms: number) =>
      (await at(ms).lapsed(sessions)).map((refusal) => refusal?.message ?? null);

    expect(await messages(0)).toEqual([null, null, null, null]);
    // After the rotation's grace (60 s) and past the token's lifetime (JWT_TTL_SECONDS).
    expect(await messages((config.JWT_TTL_SECONDS + 1) * 1000)).toEqual([
      null,
      null,
      "API key rotated; use its replacement",
      "Invalid or expired token",
    ]);
    expect((await messages(2 * 3600_000))[1]).toBe("API key expired");

    await stores.prisma.account.update({ where: { id: owner.rawAccountId }, data: { status: "SUSPENDED" } });
    expect(await messages(0)).toEqual(Array(4).fill("Account suspended"));
    expect((await at(0).lapsed(sessions)).map((refusal) => refusal?.code)).toEqual(
      Array(4).fill("FORBIDDEN"),
    );
  });
});

describe("rules applied while connected", () => {
  it("ends a dataset subscription with FORBIDDEN once the purchase lapsed", async () => {
    const lapsing = await apiA.signup("Lapsing Buyer");
    expect(
      (await apiA.graphql(PurchaseDatasetDocument, { datasetId: purchased.id }, lapsing.headers)).errors,
    ).toBeUndefined();
    const sub = withKey(apiB, lapsing).subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    await until(() => apiB.app.live.active === 1, 5000, "subscription");
    const first = datasetEvent(purchased.raw, 20);
    await apiA.app.services.events.publish(first);
    expect((await sub.next()).data?.datasetUpdated.eventId).toBe(first.id);

    await apiA.app.stores.prisma.purchase.updateMany({
      where: { accountId: lapsing.rawAccountId },
      data: { expiresAt: new Date(Date.now() - 1000) },
    });
    // Access is checked again before an event once the last check is older than a second here.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await apiA.app.services.events.publish(datasetEvent(purchased.raw, 21));
    await sub.ended;
    expect(sub.error).toMatchObject([
      { message: "Buy this dataset first (purchaseDataset)", extensions: { code: "FORBIDDEN" } },
    ]);
    expect(sub.pending).toEqual([]);
    await until(() => apiB.app.live.active === 0, 5000, "stream ended");
  });

  it("counts connections and subscriptions against the plan's rate limit (4429)", async () => {
    const admin = await apiA.admin();
    const limited = await apiA.signup("Limited Buyer");
    const set = await apiA.graphql(
      SetAccountPlanDocument,
      { accountId: limited.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 2 },
      admin.headers,
    );
    expect(set.errors).toBeUndefined();
    const first = withKey(apiB, limited);
    await first.connected;
    // The second request of the minute: the subscription; the third: another connection.
    const sub = first.subscribe(DatasetUpdatedDocument, { datasetId: draft.id });
    expect(code(await sub.next())).toBe("NOT_FOUND");
    const refused = await withKey(apiA, limited).closed;
    expect(refused.code).toBe(4429);
    expect(refused.reason).toMatch(/^Rate limit exceeded; retry in \d+s$/);
  });

  it("counts failed authentications against the client IP, as over HTTP", async () => {
    const strict = await startStack({ ANONYMOUS_RATE_LIMIT_PER_MINUTE: "2" });
    try {
      const attempt = () => liveClient(strict, { "x-api-key": "dh_live_guess" }).closed;
      expect(await attempt()).toMatchObject({ code: 4401 });
      expect(await attempt()).toMatchObject({ code: 4401 });
      expect(await attempt()).toMatchObject({ code: 4429 });
    } finally {
      await strict.close();
    }
  });

  it("takes keys that require signed requests when the upgrade request is signed", async () => {
    const created = await apiA.graphql(CreateSignedApiKeyDocument, { name: "signed live" }, buyer.headers);
    const { secret, signingSecret } = created.data!.createApiKey;
    expect(await connect(apiB, { "x-api-key": secret }).closed).toMatchObject({
      code: 4401,
      reason: "This API key requires signed requests",
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signed = liveClient(
      apiB,
      { "x-api-key": secret },
      {
        [TIMESTAMP_HEADER]: timestamp,
        [SIGNATURE_HEADER]: sign(signingSecret!, timestamp, "GET", "/graphql", ""),
      },
    );
    clients.push(signed);
    await signed.connected;
  });
});

describe("pipelineRunUpdated and deliveryUpdated", () => {
  it("deliver to the pipeline's publisher and the delivery's owner only", async () => {
    const db = apiA.app.stores.prisma;
    const source = await db.source.create({
      data: { accountId: publisher.rawAccountId, name: "feed", type: "HTTP", config: {} },
    });
    const pipeline = await db.pipeline.create({
      data: {
        accountId: publisher.rawAccountId,
        sourceId: source.id,
        datasetId: purchased.raw,
        name: "feed to live",
        steps: [],
      },
    });
    const run = await db.pipelineRun.create({
      data: {
        pipelineId: pipeline.id,
        accountId: publisher.rawAccountId,
        trigger: "MANUAL",
        status: "RUNNING",
      },
    });
    const delivery = await db.delivery.create({
      data: { accountId: buyer.rawAccountId, datasetId: purchased.raw, kind: "WEBHOOK", config: {} },
    });
    const pipelineId = encodeGlobalId("Pipeline", pipeline.id);
    const deliveryId = encodeGlobalId("Delivery", delivery.id);

    // Strangers are refused: another publisher cannot know the pipeline, a buyer lacks the scope,
    // and no one but the owner knows the delivery.
    const intruder = withKey(apiB, otherPublisher);
    expect(code(await intruder.subscribe(PipelineRunUpdatedDocument, { pipelineId }).next())).toBe(
      "NOT_FOUND",
    );
    expect(
      code(await withKey(apiB, buyer).subscribe(PipelineRunUpdatedDocument, { pipelineId }).next()),
    ).toBe("FORBIDDEN");
    expect(code(await intruder.subscribe(DeliveryUpdatedDocument, { deliveryId }).next())).toBe("NOT_FOUND");
    expect(
      code(await withKey(apiB, stranger).subscribe(DeliveryUpdatedDocument, { deliveryId }).next()),
    ).toBe("NOT_FOUND");
    expect(apiB.app.live.active).toBe(0);

    const runs = withKey(apiB, publisher).subscribe(PipelineRunUpdatedDocument, { pipelineId });
    const deliveries = withKey(apiB, buyer).subscribe(DeliveryUpdatedDocument, { deliveryId });
    await until(() => apiB.app.live.active === 2, 5000, "two subscriptions");

    const progress = newEvent<PipelineRunUpdated>("pipeline.run.updated", {
      runId: run.id,
      pipelineId: pipeline.id,
      accountId: publisher.rawAccountId,
      status: "RUNNING",
      progress: 0.5,
      rowsRead: 500,
      rowsWritten: 490,
      rowsRejected: 10,
    });
    await apiA.app.services.events.publish(progress);
    expect(await runs.next()).toEqual({
      data: {
        pipelineRunUpdated: {
          eventId: progress.id,
          occurredAt: progress.occurredAt,
          runId: encodeGlobalId("PipelineRun", run.id),
          pipelineId,
          status: "RUNNING",
          progress: 0.5,
          rowsRead: 500,
          rowsWritten: 490,
          rowsRejected: 10,
          run: { id: encodeGlobalId("PipelineRun", run.id), status: "RUNNING" },
        },
      },
    });

    const attemptId = "0190f5d2-0000-7000-8000-0000000000aa";
    const changed = newEvent<DeliveryUpdated>("delivery.updated", {
      deliveryId: delivery.id,
      accountId: buyer.rawAccountId,
      status: "ACTIVE",
      attemptId,
    });
    await apiA.app.services.events.publish(changed);
    expect(await deliveries.next()).toEqual({
      data: {
        deliveryUpdated: {
          eventId: changed.id,
          occurredAt: changed.occurredAt,
          deliveryId,
          status: "ACTIVE",
          attemptId: encodeGlobalId("DeliveryAttempt", attemptId),
        },
      },
    });
    expect(runs.pending).toEqual([]);
    runs.unsubscribe();
    deliveries.unsubscribe();
    await until(() => apiB.app.live.active === 0, 5000, "unsubscribed");
  });
});

describe("limits and errors", () => {
  it("applies the query limits to subscriptions and takes only subscriptions over WebSocket", async () => {
    const client = withKey(apiB, buyer);
    const aliases = Array.from({ length: 31 }, (_, i) => `a${i}: eventId`).join(" ");
    const tooMany = await client.client.iterate({
      query: `subscription { datasetUpdated(datasetId: "${purchased.id}") { ${aliases} } }`,
    });
    await expect(tooMany.next()).rejects.toMatchObject([
      { extensions: { code: "GRAPHQL_VALIDATION_FAILED" } },
    ]);
    const query = client.client.iterate({ query: "{ me { user { email } } }" });
    await expect(query.next()).rejects.toMatchObject([{ extensions: { code: "BAD_USER_INPUT" } }]);
  });

  it("masks unexpected errors in events and logs them whole", async () => {
    const client = withKey(apiB, buyer);
    const sub = client.subscribe(DatasetUpdatedDocument, { datasetId: purchased.id });
    await until(() => apiB.app.live.active === 1, 5000, "subscription");
    // A row count beyond SafeInt cannot be serialized: our bug, not the client's.
    const broken = newEvent<DatasetUpdated>("dataset.updated", {
      ...datasetEvent(purchased.raw, 11).data,
      rowCount: 2 ** 60,
    });
    await apiA.app.services.events.publish(broken);
    const result = await sub.next();
    expect(result.data).toBeNull();
    expect(result.errors).toEqual([
      {
        message: "Internal server error",
        locations: expect.any(Array),
        path: ["datasetUpdated", "rowCount"],
        extensions: { code: "INTERNAL_SERVER_ERROR", requestId: expect.any(String) },
      },
    ]);
    const requestId = result.errors![0]!.extensions!.requestId;
    await until(
      () => apiB.logs.some((l) => l.msg === "unexpected error in GraphQL subscription"),
      2000,
      "the log line",
    );
    expect(apiB.logText()).toContain(String(requestId).split(":")[0]);
    sub.unsubscribe();
  });
});
