// The stream engine's contract, run against every broker adapter the machine can reach (NATS
// JetStream, RabbitMQ, MQTT; Kafka when KAFKA_BROKERS is set): messages become rows, bad ones
// are quarantined with their reasons, nothing is acknowledged before it is stored, and a batch
// ClickHouse refuses pauses consumption until it is stored.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDatasetTable, liveRows } from "../../src/catalog/dataset-table.js";
import type { Column } from "../../src/catalog/columns.js";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { migrateClickHouse } from "../../src/db/clickhouse-migrations.js";
import { ident, sql } from "../../src/db/sql.js";
import { createLogger } from "../../src/observability/logger.js";
import { MessageBuffer } from "../../src/streams/adapters/adapter.js";
import { adapterFor } from "../../src/streams/adapters/registry.js";
import { parseStreamConfig } from "../../src/streams/stream.config.js";
import { BatchWriter, StreamEngine } from "../../src/streams/stream.engine.js";
import { BROKERS, KAFKA_BROKERS, testMessages, type TestBroker } from "../support/brokers.js";
import { baseConfig, uniqueName } from "../support/databases.js";
import { until } from "../support/wait.js";

const MESSAGES = 2000;
const BAD_EVERY = 100;
const COLUMNS: Column[] = [
  { name: "id", type: "INT64", nullable: false },
  { name: "name", type: "STRING", nullable: true },
  { name: "amount", type: "INT32", nullable: true },
];

const config = baseConfig();
const database = uniqueName("t");
const log = createLogger({ ...config, LOG_LEVEL: "silent" });
let admin: ClickHouse;
let ch: ClickHouse;
/** A ClickHouse nobody listens on: every write fails. */
let down: ClickHouse;

if (!KAFKA_BROKERS.length) {
  console.log(
    "stream-engine: Kafka skipped: set KAFKA_BROKERS=host:port to run the contract on a Kafka broker",
  );
}

beforeAll(async () => {
  admin = createClickHouse(config, { database: "default" });
  await migrateClickHouse(admin, database);
  ch = createClickHouse(config, { database });
  down = createClickHouse({ ...config, CLICKHOUSE_URL: "http://127.0.0.1:9" }, { database });
});

afterAll(async () => {
  await admin.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
  await Promise.all([admin.close(), ch.close(), down.close()]);
});

async function dataset(name: string) {
  const tableName = uniqueName(name);
  await createDatasetTable(ch, database, tableName, COLUMNS);
  return { id: uniqueName("ds"), tableName, columns: COLUMNS, keyColumns: ["id"] };
}

function engineFor(broker: TestBroker, target: Awaited<ReturnType<typeof dataset>>, store: ClickHouse) {
  const config = parseStreamConfig({ ...broker.config, batchSize: 250, batchMs: 50 });
  const writer = new BatchWriter(store, { database, dataset: target, steps: [], runId: uniqueName("run") });
  return new StreamEngine(adapterFor(config, broker.secrets, 500), new MessageBuffer(500), writer, {
    batchSize: config.batchSize,
    batchMs: config.batchMs,
    log,
  });
}

async function stored(tableName: string) {
  const [row] = await ch.query<{ rows: string; keys: string; sum: string }>(
    sql`SELECT toString(count()) AS rows, toString(uniqExact(id)) AS keys, toString(sum(id)) AS sum
        FROM ${liveRows(database, tableName)}`,
  );
  return { rows: Number(row!.rows), keys: Number(row!.keys), sum: Number(row!.sum) };
}

async function quarantined(datasetId: string) {
  return ch.query<{ raw: string; reasons: string[] }>(
    sql`SELECT raw, any(reasons) AS reasons FROM ${ident(database, "quarantine")}
        WHERE dataset_id = ${datasetId} GROUP BY raw ORDER BY raw`,
  );
}

const sumOfGood = (from: number, to: number) => {
  let sum = 0;
  for (let id = from; id <= to; id++) if (id % BAD_EVERY) sum += id;
  return sum;
};

describe.each(BROKERS)("the stream engine on $broker", ({ make }) => {
  let broker: TestBroker;
  beforeAll(async () => {
    broker = await make();
  });
  afterAll(async () => broker?.cleanup());

  it("stores every message once by key, quarantines the bad ones, and pauses while ClickHouse refuses", async () => {
    const target = await dataset("stream");
    const engine = engineFor(broker, target, ch);
    await engine.start();
    await broker.publish(testMessages(1, MESSAGES, BAD_EVERY));
    const good = MESSAGES - MESSAGES / BAD_EVERY;
    await until("every message stored", async () => (await stored(target.tableName)).keys >= good, 60_000);
    // At least once from the broker, once by key in the dataset.
    expect(engine.counters.written).toBeGreaterThanOrEqual(good);
    expect(engine.counters.paused).toBe(false);
    expect(await stored(target.tableName)).toEqual({ rows: good, keys: good, sum: sumOfGood(1, MESSAGES) });
    await until(
      "bad messages quarantined",
      async () => (await quarantined(target.id)).length >= MESSAGES / BAD_EVERY,
    );
    const bad = await quarantined(target.id);
    expect(bad).toHaveLength(MESSAGES / BAD_EVERY);
    expect(bad.find((b) => b.raw === "not json 100")?.reasons[0]).toMatch(/^invalid JSON/);
    expect(bad.find((b) => b.raw.includes("lots-200"))?.reasons.join()).toMatch(/amount/);
    await until("lag back to zero", async () => ((await engine.lag()) ?? 0) === 0);
    await engine.stop();

    // ClickHouse unreachable: the engine takes a batch, cannot store it, and acknowledges nothing.
    const refused = engineFor(broker, target, down);
    await refused.start();
    await broker.publish(testMessages(MESSAGES + 1, 300, BAD_EVERY));
    await until("consumption paused", () => refused.counters.paused);
    expect(refused.counters.written).toBe(0);
    await refused.stop();

    // The next consumer gets every one of them again.
    const resumed = engineFor(broker, target, ch);
    await resumed.start();
    await until(
      "the held messages stored",
      async () => (await stored(target.tableName)).keys >= good + 297,
      60_000,
    );
    await resumed.stop();
    expect(await stored(target.tableName)).toEqual({
      rows: good + 297,
      keys: good + 297,
      sum: sumOfGood(1, MESSAGES + 300),
    });
  }, 120_000);
});
