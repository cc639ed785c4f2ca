// Streaming ingestion's fault test, through the real API and real worker processes on the real
// brokers: STREAM_FAULT_MESSAGES messages are published while the consuming worker is killed
// (SIGKILL) twice mid-stream, and each arrives in the dataset exactly once by key, the bad ones
// quarantined with their reasons, the lag back to zero. Then ClickHouse becomes unreachable for
// the worker (a proxy the test switches off; the shared server keeps running): consumption
// pauses, nothing is acknowledged, and everything arrives once it is back.
import type { ChildProcess } from "node:child_process";
import { afterAll, beforeAll, expect, it } from "vitest";
import { liveRows } from "../../src/catalog/dataset-table.js";
import { ident, sql } from "../../src/db/sql.js";
import {
  CreateDatasetDocument,
  CreatePipelineDocument,
  CreateSourceDocument,
  StartPipelineDocument,
  StopPipelineDocument,
  StreamSourceMetricsDocument,
} from "../generated/graphql.js";
import { BROKERS, mqttBroker, privateMosquitto, testMessages, type TestBroker } from "../support/brokers.js";
import { describeOnServer, embeddedEngine, uniqueName } from "../support/databases.js";
import { startProxy, type TcpProxy } from "../support/proxy.js";
import { startStack, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";
import { spawnWorker } from "../support/worker-process.js";

/** Messages per broker, the 100,000 (README: Streaming ingestion). */
export const STREAM_FAULT_MESSAGES = 100_000;
/** Every 500th message is bad (not JSON, or an amount that is not a number). */
const BAD_EVERY = 500;
/** Published while no worker runs: under Mosquitto's default max_queued_messages (1000). */
const WHILE_DEAD = 500;
const overrides = { STREAM_POLL_INTERVAL_MS: "300" };

let stack: TestStack;
let proxy: TcpProxy;
const workers: ChildProcess[] = [];

beforeAll(async () => {
  if (embeddedEngine) return;
  stack = await startStack(overrides);
  proxy = await startProxy(Number(new URL(stack.app.config.CLICKHOUSE_URL).port || 8123));
}, 60_000);

afterAll(async () => {
  for (const worker of workers) if (worker.exitCode === null) worker.kill("SIGKILL");
  await proxy?.close();
  await stack?.close();
});

function startWorker(): ChildProcess {
  // The worker reaches ClickHouse only through the proxy.
  const worker = spawnWorker(stack, { ...overrides, CLICKHOUSE_URL: `http://127.0.0.1:${proxy.port}` });
  workers.push(worker);
  return worker;
}

async function kill(worker: ChildProcess): Promise<void> {
  worker.kill("SIGKILL");
  if (worker.exitCode === null && worker.signalCode === null)
    await new Promise((r) => worker.once("exit", r));
}

// Real worker processes share the API's ClickHouse: a server only (the embedded engine's data
// belongs to the one process that opened it).
describeOnServer.each(BROKERS)("a $broker stream", ({ broker: kind, make }) => {
  let broker: TestBroker;
  let mosquitto: Awaited<ReturnType<typeof privateMosquitto>> | undefined;
  beforeAll(async () => {
    // MQTT on a Mosquitto configured to keep what a session away cannot take (README).
    if (kind === "mqtt") mosquitto = await privateMosquitto();
    broker = mosquitto ? await mqttBroker(mosquitto.url) : await make();
  });
  afterAll(async () => {
    await broker?.cleanup();
    await mosquitto?.stop();
  });

  it("arrives exactly once by key though its worker is killed twice, and waits out a ClickHouse outage", async () => {
    const publisher = await stack.signup("Stream Publisher", "PUBLISHER");
    const slug = uniqueName("stream").toLowerCase();
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
            { name: "name", type: "STRING", nullable: true },
            { name: "amount", type: "INT32", nullable: true },
          ],
        },
      },
      publisher.headers,
    );
    const source = await stack.graphql(
      CreateSourceDocument,
      {
        input: {
          name: "events",
          type: "STREAM",
          // NATS re-delivers what a killed worker held after ackWaitSeconds: short here.
          config: {
            ...broker.config,
            batchSize: 2000,
            batchMs: 100,
            ...(broker.broker === "nats" ? { ackWaitSeconds: 5 } : {}),
          },
          secrets: broker.secrets,
        },
      },
      publisher.headers,
    );
    expect(source.errors).toBeUndefined();
    const sourceId = source.data!.createSource.id;
    const pipeline = await stack.graphql(
      CreatePipelineDocument,
      { input: { sourceId, datasetId: ds.data!.createDataset.id, name: "events", steps: [] } },
      publisher.headers,
    );
    expect(pipeline.errors).toBeUndefined();
    const pipelineId = pipeline.data!.createPipeline.id;
    const started = await stack.graphql(StartPipelineDocument, { id: pipelineId }, publisher.headers);
    expect(started.errors).toBeUndefined();

    const prisma = stack.app.stores.prisma;
    const ch = stack.app.stores.clickhouse;
    const db = stack.app.config.CLICKHOUSE_DATABASE;
    const dataset = await prisma.dataset.findUniqueOrThrow({ where: { slug } });
    const stored = async () => {
      const [row] = await ch.query<{ keys: string; rows: string; sum: string }>(
        sql`SELECT toString(uniqExact(id)) AS keys, toString(count()) AS rows, toString(sum(id)) AS sum
            FROM ${liveRows(db, dataset.tableName)}`,
      );
      return { keys: Number(row!.keys), rows: Number(row!.rows), sum: Number(row!.sum) };
    };
    const metrics = async () => {
      const res = await stack.graphql(StreamSourceMetricsDocument, { id: sourceId }, publisher.headers);
      return (res.data?.node as { metrics: { stream: Record<string, unknown> | null } }).metrics.stream;
    };
    const all = testMessages(1, STREAM_FAULT_MESSAGES + 1000, BAD_EVERY);
    let next = 0;
    const publish = (count: number) => {
      const part = all.slice(next, next + count);
      next += count;
      return broker.publish(part);
    };

    let worker = startWorker();
    await until("the worker consuming", async () => (await metrics())?.consuming === true, 60_000).catch(
      async (error: unknown) => {
        const logs = await prisma.pipelineLog.findMany({ where: { pipeline: { datasetId: dataset.id } } });
        throw new Error(
          `${(error as Error).message}; pipeline logs: ${JSON.stringify(logs.map((l) => l.message))}`,
        );
      },
    );
    // Two kills, each once a part of what was published is stored and the rest is not: publish
    // 40% and kill at 10% stored, then 35% more and kill at 50% stored.
    for (const [publishPercent, killPercent] of [
      [40, 10],
      [35, 50],
    ] as const) {
      const publishCount = (STREAM_FAULT_MESSAGES * publishPercent) / 100;
      const killAt = (STREAM_FAULT_MESSAGES * killPercent) / 100;
      const publishing = publish(publishCount);
      await until(`${killAt} keys stored`, async () => (await stored()).keys >= killAt, 60_000);
      await kill(worker);
      await publishing;
      await publish(WHILE_DEAD);
      worker = startWorker();
      // Everything so far stored proves the new worker consumes; only then more is published
      // (Mosquitto drops what an absent MQTT session cannot queue).
      const sofar = next - Math.floor(next / BAD_EVERY);
      await until(
        `the first ${sofar} keys stored after a restart`,
        async () => (await stored()).keys >= sofar,
        90_000,
      );
    }
    await publish(STREAM_FAULT_MESSAGES - next);
    expect(next).toBe(STREAM_FAULT_MESSAGES);
    const bad = STREAM_FAULT_MESSAGES / BAD_EVERY;
    const good = STREAM_FAULT_MESSAGES - bad;
    let goodSum = 0;
    for (let id = 1; id <= STREAM_FAULT_MESSAGES; id++) if (id % BAD_EVERY) goodSum += id;

    await until("every message stored", async () => (await stored()).keys >= good, 90_000);
    expect(await stored()).toEqual({ keys: good, rows: good, sum: goodSum });
    const quarantined = async () =>
      ch.query<{ raw: string; reasons: string[] }>(
        sql`SELECT raw, any(reasons) AS reasons FROM ${ident(db, "quarantine")}
            WHERE dataset_id = ${dataset.id} GROUP BY raw`,
      );
    await until("bad messages quarantined", async () => (await quarantined()).length >= bad, 30_000);
    const rejected = await quarantined();
    expect(rejected).toHaveLength(bad);
    expect(rejected.every((r) => r.reasons.length > 0)).toBe(true);
    expect(rejected.find((r) => r.raw === `not json ${BAD_EVERY}`)?.reasons[0]).toMatch(/^invalid JSON/);
    await until("lag back to zero", async () => {
      const m = await metrics();
      return m?.consuming === true && (m.lag === 0 || m.lag === null);
    });

    // ClickHouse unreachable for the worker: it pauses and acknowledges nothing.
    proxy.disable();
    await publish(1000);
    await until("consumption paused", async () => (await metrics())?.paused === true, 30_000);
    expect((await stored()).keys).toBe(good);
    proxy.enable();
    const more = all
      .slice(STREAM_FAULT_MESSAGES)
      .filter((m) => !m.body.startsWith("not") && !m.body.includes("lots-"));
    await until("the held messages stored", async () => (await stored()).keys >= good + more.length, 60_000);
    expect((await stored()).keys).toBe(good + more.length);
    await until("resumed", async () => (await metrics())?.paused === false);

    const stopped = await stack.graphql(StopPipelineDocument, { id: pipelineId }, publisher.headers);
    expect(stopped.errors).toBeUndefined();
    await until("the worker stopped consuming", async () => (await metrics())?.consuming === false, 30_000);
    await kill(worker);
  }, 240_000);
});
