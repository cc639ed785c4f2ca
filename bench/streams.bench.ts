// Streaming ingestion: events per second and how long an event takes to become a visible row,
// (a) through the batch event endpoint (POST /api/v1/ingest/{slug}/events/batch, which answers
// once the events are stored: a request's latency is its events' visibility delay) and (b)
// through each broker the machine runs (NATS JetStream, RabbitMQ, MQTT on a Mosquitto of its own;
// Kafka when KAFKA_BROKERS is set) into the stream consumer engine, timed from each message's
// publish to the end of the insert that stored it. Printed beside the aims: at least
// 50,000 events/s through the batch endpoint, p99 visibility under 2 s.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Column } from "../src/catalog/columns.js";
import { createDatasetTable, liveRows } from "../src/catalog/dataset-table.js";
import { sql } from "../src/db/sql.js";
import { createLogger } from "../src/observability/logger.js";
import { MessageBuffer } from "../src/streams/adapters/adapter.js";
import { adapterFor } from "../src/streams/adapters/registry.js";
import { parseStreamConfig } from "../src/streams/stream.config.js";
import {
  BatchWriter,
  StreamEngine,
  type BatchOutcome,
  type PreparedBatch,
} from "../src/streams/stream.engine.js";
import { SetAccountPlanDocument } from "../test/generated/graphql.js";
import { BROKERS, mqttBroker, privateMosquitto, type TestBroker } from "../test/support/brokers.js";
import { baseConfig, uniqueName } from "../test/support/databases.js";
import { publishing } from "../test/support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../test/support/stack.js";
import { until } from "../test/support/wait.js";
import { quantile } from "./support/measure.js";

const EVENTS = Number(process.env.BENCH_STREAM_EVENTS ?? 200_000);
const PER_REQUEST = Number(process.env.BENCH_STREAM_BATCH ?? 5000);
const CONCURRENCY = Number(process.env.BENCH_STREAM_CONCURRENCY ?? 4);
const MESSAGES = Number(process.env.BENCH_STREAM_MESSAGES ?? 50_000);
const AIM_RATE = 50_000;
const AIM_P99_MS = 2000;

const COLUMNS: Column[] = [
  { name: "id", type: "STRING", nullable: false },
  { name: "type", type: "STRING", nullable: false },
  { name: "amount", type: "INT32", nullable: true },
  { name: "sent", type: "INT64", nullable: false },
  { name: "properties", type: "STRING", nullable: true },
];

interface Result {
  path: string;
  events: number;
  seconds: number;
  delays: number[];
}
const results: Result[] = [];

let stack: TestStack;
let publisher: TestAccount;

beforeAll(async () => {
  stack = await startStack({ INGEST_MAX_BYTES: String(64 * 1024 * 1024) });
  publisher = await stack.signup("Stream Bench Publisher", "PUBLISHER");
  const admin = await stack.admin();
  await stack.graphql(SetAccountPlanDocument, { accountId: publisher.accountId, plan: "PRO" }, admin.headers);
});

afterAll(async () => {
  printTable();
  await stack?.close();
});

const event = (id: string, i: number) => ({
  id,
  type: i % 3 ? "view" : "click",
  amount: i % 1000,
  sent: Date.now(),
  properties: { page: `/p/${i % 50}`, tags: ["a", "b"] },
});

async function rows(tableName: string): Promise<number> {
  const [row] = await stack.app.stores.clickhouse.query<{ n: string }>(
    sql`SELECT toString(count()) AS n FROM ${liveRows(stack.app.config.CLICKHOUSE_DATABASE, tableName)}`,
  );
  return Number(row!.n);
}

describe("the batch event endpoint", () => {
  it(`stores ${EVENTS} events sent ${PER_REQUEST} a request, ${CONCURRENCY} requests at a time`, async () => {
    const steps = publishing(stack, publisher);
    const dataset = await steps.dataset(COLUMNS);
    await steps.pipeline(await steps.source("PUSH", {}), dataset.id, "INCREMENTAL");
    const { tableName } = await stack.app.stores.prisma.dataset.findUniqueOrThrow({
      where: { id: dataset.rawId },
    });
    const send = async (from: number) => {
      const events = Array.from({ length: PER_REQUEST }, (_, i) => event(`e${from + i}`, from + i));
      const body = events.map((e) => JSON.stringify(e)).join("\n");
      const started = performance.now();
      const res = await fetch(`${stack.url}/api/v1/ingest/${dataset.slug}/events/batch`, {
        method: "POST",
        headers: { ...publisher.headers, "content-type": "application/x-ndjson" },
        body,
      });
      const answer = (await res.json()) as { accepted: number };
      expect([res.status, answer.accepted]).toEqual([202, PER_REQUEST]);
      return performance.now() - started;
    };
    await send(-PER_REQUEST); // warm-up, not counted
    const delays: number[] = [];
    let next = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < EVENTS) {
          const from = next;
          next += PER_REQUEST;
          const ms = await send(from);
          // Every event of the request became visible when the 202 came.
          for (let i = 0; i < PER_REQUEST; i++) delays.push(ms);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    expect(await rows(tableName)).toBe(EVENTS + PER_REQUEST);
    results.push({
      path: `event endpoint, ${PER_REQUEST}/request × ${CONCURRENCY}`,
      events: EVENTS,
      seconds,
      delays,
    });
  });
});

/** A writer that notes, for each stored row, how long ago it was published. */
class TimedWriter extends BatchWriter {
  readonly delays: number[] = [];
  lastStoredAt = 0;

  override async write(prepared: PreparedBatch): Promise<BatchOutcome> {
    const sent = prepared.rows.map((row) => Number(row.sent));
    const outcome = await super.write(prepared);
    const now = Date.now();
    for (const at of sent) this.delays.push(now - at);
    this.lastStoredAt = performance.now();
    return outcome;
  }
}

const log = createLogger({ ...baseConfig(), LOG_LEVEL: "silent" });

const brokers: { broker: string; make: () => Promise<TestBroker & { stop?: () => Promise<void> }> }[] = [
  ...BROKERS.filter((b) => b.broker !== "mqtt"),
  {
    broker: "mqtt",
    async make() {
      // Mosquitto as README: Stream sources asks (the shared one drops what it cannot queue).
      const mosquitto = await privateMosquitto();
      const broker = await mqttBroker(mosquitto.url);
      return { ...broker, stop: () => mosquitto.stop() };
    },
  },
];

describe.each(brokers)("the $broker consumer", ({ broker: name, make }) => {
  it(`stores ${MESSAGES} messages as they are published`, async () => {
    const broker = await make();
    try {
      const database = stack.app.config.CLICKHOUSE_DATABASE;
      const tableName = uniqueName("bench");
      await createDatasetTable(stack.app.stores.clickhouse, database, tableName, COLUMNS);
      const target = { id: uniqueName("ds"), tableName, columns: COLUMNS, keyColumns: ["id"] };
      const config = parseStreamConfig(broker.config); // default batching: 1000 messages or 200 ms
      const writer = new TimedWriter(stack.app.stores.clickhouse, {
        database,
        dataset: target,
        steps: [],
        runId: uniqueName("run"),
      });
      const capacity = config.batchSize * 2;
      const engine = new StreamEngine(
        adapterFor(config, broker.secrets, capacity),
        new MessageBuffer(capacity),
        writer,
        { batchSize: config.batchSize, batchMs: config.batchMs, log },
      );
      await engine.start();
      const started = performance.now();
      // Published in slices so that `sent` is each message's own publish time.
      for (let i = 0; i < MESSAGES; i += 1000) {
        const slice = Array.from({ length: Math.min(1000, MESSAGES - i) }, (_, k) => {
          const e = event(`m${i + k}`, i + k);
          // Messages carry nested values as text: the engine, unlike the event endpoints,
          // stores what the steps make of a message and nothing flattens it first.
          return { id: e.id, body: JSON.stringify({ ...e, properties: JSON.stringify(e.properties) }) };
        });
        await broker.publish(slice);
      }
      await until(
        "every message stored",
        () => {
          if (engine.counters.rejected) throw new Error(`${engine.counters.rejected} message(s) rejected`);
          return writer.delays.length >= MESSAGES;
        },
        300_000,
        50,
      );
      const seconds = (writer.lastStoredAt - started) / 1000;
      await engine.stop();
      expect(await rows(tableName)).toBe(MESSAGES);
      results.push({ path: `${name} → consumer engine`, events: MESSAGES, seconds, delays: writer.delays });
    } finally {
      await broker.cleanup();
      await broker.stop?.();
    }
  });
});

function printTable() {
  const fmt = (n: number) => Math.round(n).toLocaleString("en-US");
  const lines = [
    "",
    `| path | events | events/s (aim ≥ ${fmt(AIM_RATE)} for the batch endpoint) | p50 visible after | p99 visible after (aim < ${AIM_P99_MS} ms) |`,
    "| --- | --- | --- | --- | --- |",
  ];
  for (const r of results) {
    const sorted = [...r.delays].sort((a, b) => a - b);
    lines.push(
      `| ${r.path} | ${fmt(r.events)} | ${fmt(r.events / r.seconds)} | ${fmt(quantile(sorted, 0.5))} ms | ${fmt(quantile(sorted, 0.99))} ms |`,
    );
  }
  console.log(lines.join("\n"));
}
