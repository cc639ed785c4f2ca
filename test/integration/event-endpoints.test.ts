// The event endpoints on the real stack: POST /api/v1/ingest/{slug}/events (one event) and
// …/events/batch (a JSON array or NDJSON) answer 202 with each event's id once the events are
// stored through the PUSH pipeline's steps, without a pipeline run per request; bad events are
// quarantined and listed by position; an Idempotency-Key makes a retried request write the same
// ids; concurrent requests share inserts and lose nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveRows } from "../../src/catalog/dataset-table.js";
import { createClickHouse } from "../../src/db/clickhouse.js";
import { ident, sql } from "../../src/db/sql.js";
import type { Caller } from "../../src/identity/caller.js";
import { EventsService } from "../../src/ingest/events.service.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { failure } from "../support/failures.js";
import { publishing } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

let stack: TestStack;
let publisher: TestAccount;
let other: TestAccount;
let buyer: TestAccount;
let datasetId: string;
let datasetGlobalId: string;
let tableName: string;
let pipelineId: string;
const slug = "live_events";

const prisma = () => stack.app.stores.prisma;
const clickhouse = () => stack.app.stores.clickhouse;
const database = () => stack.app.config.CLICKHOUSE_DATABASE;

interface Accepted {
  ids: string[];
  accepted: number;
  rejected: { index: number; id: string; reasons: string[] }[];
}

async function send(path: "events" | "events/batch", body: string, options: RequestOptions = {}) {
  const res = await fetch(`${stack.url}/api/v1/ingest/${options.slug ?? slug}/${path}`, {
    method: "POST",
    headers: {
      ...(options.headers ?? publisher.headers),
      "content-type": options.contentType ?? "application/json",
      ...(options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {}),
    },
    body,
  });
  return {
    status: res.status,
    body: (await res.json()) as Accepted & { error?: { code: string; message: string } },
  };
}

interface RequestOptions {
  headers?: Record<string, string>;
  contentType?: string;
  idempotencyKey?: string;
  slug?: string;
}

async function rows(where = sql`1`) {
  return clickhouse().query<{ id: string; name: string | null; n: number | null; properties: string | null }>(
    sql`SELECT id, name, n, properties FROM ${liveRows(database(), tableName)} WHERE ${where} ORDER BY id`,
  );
}

async function count(): Promise<number> {
  const [row] = await clickhouse().query<{ c: string }>(
    sql`SELECT toString(count()) AS c FROM ${liveRows(database(), tableName)}`,
  );
  return Number(row!.c);
}

beforeAll(async () => {
  stack = await startStack();
  publisher = await stack.signup("Event Publisher", "PUBLISHER");
  other = await stack.signup("Other Publisher", "PUBLISHER");
  buyer = await stack.signup("Event Buyer", "BUYER");
  const created = await publishing(stack, publisher).dataset(
    [
      { name: "id", type: "STRING", nullable: false },
      { name: "name", type: "STRING", nullable: true },
      { name: "n", type: "INT32", nullable: true },
      { name: "properties", type: "STRING", nullable: true },
      { name: "at", type: "DATETIME", nullable: true },
    ],
    { slug },
  );
  datasetId = created.rawId;
  datasetGlobalId = created.id;
  tableName = (await prisma().dataset.findUniqueOrThrow({ where: { id: datasetId } })).tableName;
}, 60_000);

afterAll(async () => stack?.close());

describe("without a PUSH pipeline", () => {
  it("refuses events, saying how to set one up", async () => {
    const res = await send("events", JSON.stringify({ name: "x" }));
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("BAD_USER_INPUT");
    expect(res.body.error?.message).toMatch(/no PUSH pipeline/);
  });
});

describe("with a PUSH pipeline", () => {
  beforeAll(async () => {
    const steps = publishing(stack, publisher);
    const sourceId = await steps.source("PUSH", {});
    pipelineId = decodeGlobalId(await steps.pipeline(sourceId, datasetGlobalId, "INCREMENTAL")).id;
  });

  it("stores one event before answering 202 with its id, nested properties as JSON text", async () => {
    const res = await send(
      "events",
      JSON.stringify({ name: "signup", n: 1, properties: { plan: "pro", tags: ["a"] } }),
    );
    expect(res.status).toBe(202);
    expect(res.body.ids).toHaveLength(1);
    expect(res.body.ids[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(res.body).toMatchObject({ accepted: 1, rejected: [] });
    expect(await rows(sql`id = ${res.body.ids[0]!}`)).toEqual([
      { id: res.body.ids[0], name: "signup", n: 1, properties: '{"plan":"pro","tags":["a"]}' },
    ]);
    // No run queued per request: only the pipeline's one events run.
    const runs = await prisma().pipelineRun.findMany({ where: { pipelineId } });
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ trigger: "PUSH", status: "SUCCEEDED" });
  });

  it("takes a JSON array, keeping given ids and quarantining bad events by position", async () => {
    const events = [{ id: "e1", n: 1 }, { id: "e2", n: "lots" }, 5, { id: "e3", name: "ok" }];
    const res = await send("events/batch", JSON.stringify(events));
    expect(res.status).toBe(202);
    expect(res.body.ids.slice(0, 2)).toEqual(["e1", "e2"]);
    expect(res.body.ids[3]).toBe("e3");
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected.map((r) => r.index)).toEqual([1, 2]);
    expect(res.body.rejected[0]!.reasons.join()).toMatch(/\bn\b/);
    expect(res.body.rejected[1]!.reasons).toEqual(["is a number, not a JSON object"]);
    expect((await rows(sql`id IN ('e1', 'e2', 'e3')`)).map((r) => r.id)).toEqual(["e1", "e3"]);
    const quarantined = await clickhouse().query<{ origin: string; raw: string }>(
      sql`SELECT origin, raw FROM ${ident(database(), "quarantine")} WHERE dataset_id = ${datasetId} ORDER BY origin`,
    );
    expect(quarantined.map((q) => q.origin)).toEqual(
      expect.arrayContaining(["event#e2", `event#${res.body.ids[2]}`]),
    );
  });

  it("takes NDJSON, quarantining a line that is not JSON", async () => {
    const body = '{"id":"n1","n":7}\n{not json\n\n{"id":"n2"}\n';
    const res = await send("events/batch", body, { contentType: "application/x-ndjson" });
    expect(res.status).toBe(202);
    expect(res.body.ids).toHaveLength(3);
    expect(res.body.accepted).toBe(2);
    expect(res.body.rejected).toEqual([
      { index: 1, id: res.body.ids[1], reasons: [expect.stringMatching(/^invalid JSON/)] },
    ]);
    expect((await rows(sql`id IN ('n1', 'n2')`)).map((r) => [r.id, r.n])).toEqual([
      ["n1", 7],
      ["n2", null],
    ]);
  });

  it("writes the same ids again for a request retried with its Idempotency-Key", async () => {
    const body = JSON.stringify([{ name: "retry-a" }, { name: "retry-b" }]);
    const first = await send("events/batch", body, { idempotencyKey: "order-42" });
    const before = await count();
    const again = await send("events/batch", body, { idempotencyKey: "order-42" });
    expect(again.body.ids).toEqual(first.body.ids);
    expect(await count()).toBe(before);
    const otherKey = await send("events/batch", body, { idempotencyKey: "order-43" });
    expect(otherKey.body.ids).not.toEqual(first.body.ids);
    expect(await count()).toBe(before + 2);
  });

  it("stores every event of concurrent requests once, sharing inserts", async () => {
    const before = await count();
    const requests = Array.from({ length: 20 }, (_, r) =>
      send(
        "events/batch",
        JSON.stringify(Array.from({ length: 500 }, (_, i) => ({ id: `c${r}-${i}`, n: i }))),
      ),
    );
    const answers = await Promise.all(requests);
    expect(answers.every((a) => a.status === 202 && a.body.accepted === 500)).toBe(true);
    expect(await count()).toBe(before + 10_000);
    // Counted on the events run (in the background) and the dataset's row count (every few seconds).
    await until("the run counted the events", async () => {
      const run = await prisma().pipelineRun.findFirstOrThrow({ where: { pipelineId } });
      return Number(run.rowsWritten) >= 10_000 + 6;
    });
  });

  it("feeds a recent-window aggregate over REST: events per minute over the last 5 minutes", async () => {
    const now = new Date().toISOString();
    const old = new Date(Date.now() - 3_600_000).toISOString();
    const events = [{ at: now }, { at: now }, { at: now }, { at: old }];
    expect((await send("events/batch", JSON.stringify(events))).body.accepted).toBe(4);
    const res = await fetch(`${stack.url}/api/v1/datasets/${slug}/aggregate`, {
      method: "POST",
      headers: { ...publisher.headers, "content-type": "application/json" },
      body: JSON.stringify({
        window: { column: "at", last: "5m" },
        groupBy: [{ column: "at", bucket: "MINUTE" }],
        metrics: [{ fn: "COUNT", alias: "events" }],
        first: 10,
      }),
    });
    expect(res.status).toBe(200);
    const { data } = (await res.json()) as { data: { group: { at: string }; metrics: { events: number } }[] };
    // Three in the window (one bucket, or two if a minute turned between them), none from an hour ago.
    expect(data.reduce((sum, d) => sum + Number(d.metrics.events), 0)).toBe(3);
    expect(data.every((d) => /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00Z$/.test(d.group.at))).toBe(true);
  });

  it("answers SERVICE_UNAVAILABLE when ClickHouse does not take the events; a retry with the key stores them", async () => {
    const down = createClickHouse(
      { ...stack.app.config, CLICKHOUSE_URL: "http://127.0.0.1:9" },
      { database: database() },
    );
    const refusing = new EventsService(prisma(), down, database(), stack.app.services.events, stack.app.log);
    const caller: Caller = {
      kind: "user",
      accountId: publisher.rawAccountId,
      userId: decodeGlobalId(publisher.userId).id,
      role: "PUBLISHER",
      scopes: ["pipelines:write"],
      limits: { perMinute: 1000, perHour: null, perMonth: null },
    };
    const body = JSON.stringify([{ name: "outage-a" }, { name: "outage-b" }]);
    try {
      const refused = await failure(() =>
        refusing.ingest(caller, slug, { kind: "many", value: JSON.parse(body) }, "outage-1"),
      );
      expect(refused.code).toBe("SERVICE_UNAVAILABLE");
      expect(refused.message).toMatch(/send them again/);
    } finally {
      await down.close();
    }
    expect(await rows(sql`name LIKE 'outage-%'`)).toEqual([]);
    const retried = await send("events/batch", body, { idempotencyKey: "outage-1" });
    expect(retried.status).toBe(202);
    expect((await rows(sql`name LIKE 'outage-%'`)).map((r) => r.id).sort()).toEqual(
      [...retried.body.ids].sort(),
    );
  });

  it("refuses what it cannot take, with codes", async () => {
    const buyerRes = await send("events", "{}", { headers: buyer.headers });
    expect([buyerRes.status, buyerRes.body.error?.code]).toEqual([403, "FORBIDDEN"]);
    const foreign = await send("events", "{}", { headers: other.headers });
    expect([foreign.status, foreign.body.error?.code]).toEqual([404, "NOT_FOUND"]);
    const empty = await send("events/batch", "[]");
    expect([empty.status, empty.body.error?.code]).toEqual([400, "BAD_USER_INPUT"]);
    const notArray = await send("events/batch", '{"id":"x"}');
    expect([notArray.status, notArray.body.error?.code]).toEqual([400, "BAD_USER_INPUT"]);
    const badKey = await send("events", "{}", { idempotencyKey: "two words" });
    expect([badKey.status, badKey.body.error?.code]).toEqual([400, "BAD_USER_INPUT"]);
    const anonymous = await send("events", "{}", { headers: {} });
    expect(anonymous.status).toBe(401);
  });
});
