// The brokers on this machine (and in CI): NATS JetStream 4222, RabbitMQ 5672, Mosquitto 1883;
// Kafka only where KAFKA_BROKERS names one. Each test gets a stream, queue or topic of its own
// (unique names, removed by cleanup()), so test files run in parallel and beside other users of
// the shared brokers.
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect as natsConnect } from "@nats-io/transport-node";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import amqp from "amqplib";
import { Kafka, logLevel } from "kafkajs";
import mqtt from "mqtt";
import type { StreamBroker } from "../../src/streams/stream.config.js";
import { uniqueName } from "./databases.js";

export interface TestMessage {
  /** A broker-level message id where the broker has one (RabbitMQ message-id). */
  id: string;
  body: string;
}

export interface TestBroker {
  broker: StreamBroker;
  /** The STREAM source config consuming what publish() sends (batching left to the caller). */
  config: Record<string, unknown>;
  /** The source's secrets for that config. */
  secrets: Record<string, string>;
  publish(messages: readonly TestMessage[]): Promise<void>;
  cleanup(): Promise<void>;
}

export const KAFKA_BROKERS = process.env.KAFKA_BROKERS?.split(",").filter(Boolean) ?? [];

/** Publishes in groups, each group's sends in flight together (a few hundred at a time). */
async function inGroups<T>(items: readonly T[], size: number, send: (item: T) => Promise<unknown>) {
  for (let i = 0; i < items.length; i += size) await Promise.all(items.slice(i, i + size).map(send));
}

export async function natsBroker(): Promise<TestBroker> {
  const name = uniqueName("dh").replaceAll("_", "-");
  const nc = await natsConnect({ servers: "nats://127.0.0.1:4222" });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({ name, subjects: [`${name}.>`] });
  const js = jetstream(nc);
  return {
    broker: "nats",
    config: {
      broker: "nats",
      servers: ["nats://127.0.0.1:4222"],
      stream: name,
      durable: "datahus",
      ackWaitSeconds: 10,
    },
    secrets: {},
    publish: (messages) =>
      inGroups(messages, 500, (m) => js.publish(`${name}.events`, m.body, { msgID: m.id })),
    async cleanup() {
      await jsm.streams.delete(name).catch(() => {});
      await nc.close();
    },
  };
}

export async function rabbitmqBroker(): Promise<TestBroker> {
  const queue = uniqueName("dh");
  const connection = await amqp.connect("amqp://guest:guest@127.0.0.1:5672");
  const channel = await connection.createConfirmChannel();
  await channel.assertQueue(queue, { durable: true });
  return {
    broker: "rabbitmq",
    config: { broker: "rabbitmq", url: "amqp://guest@127.0.0.1:5672", queue },
    secrets: { password: "guest" },
    async publish(messages) {
      for (let i = 0; i < messages.length; i += 1000) {
        for (const m of messages.slice(i, i + 1000)) {
          channel.sendToQueue(queue, Buffer.from(m.body), { persistent: true, messageId: m.id });
        }
        await channel.waitForConfirms();
      }
    },
    async cleanup() {
      await channel.deleteQueue(queue).catch(() => {});
      await connection.close().catch(() => {});
    },
  };
}

export async function mqttBroker(url = "mqtt://127.0.0.1:1883"): Promise<TestBroker> {
  const name = uniqueName("dh");
  const topic = `datahus-test/${name}`;
  const client = await mqtt.connectAsync(url, { protocolVersion: 5 });
  return {
    broker: "mqtt",
    config: {
      broker: "mqtt",
      url,
      topics: [topic],
      clientId: name,
      sessionExpirySeconds: 600,
    },
    secrets: {},
    publish: (messages) => inGroups(messages, 500, (m) => client.publishAsync(topic, m.body, { qos: 1 })),
    async cleanup() {
      await client.endAsync().catch(() => {});
      // A clean start with the consumer's client id ends its persistent session on the broker.
      const ender = await mqtt.connectAsync(url, { clientId: name, clean: true });
      await ender.endAsync().catch(() => {});
    },
  };
}

export async function kafkaBroker(): Promise<TestBroker> {
  const topic = uniqueName("dh");
  const kafka = new Kafka({ clientId: "datahus-test", brokers: KAFKA_BROKERS, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = kafka.producer();
  await producer.connect();
  return {
    broker: "kafka",
    config: { broker: "kafka", brokers: KAFKA_BROKERS, topics: [topic], groupId: topic },
    secrets: {},
    async publish(messages) {
      for (let i = 0; i < messages.length; i += 1000) {
        await producer.send({
          topic,
          messages: messages.slice(i, i + 1000).map((m) => ({ key: m.id, value: m.body })),
        });
      }
    },
    async cleanup() {
      await producer.disconnect().catch(() => {});
      await admin.deleteTopics({ topics: [topic] }).catch(() => {});
      await admin.disconnect().catch(() => {});
    },
  };
}

/** Every broker the tests can reach here: Kafka only when KAFKA_BROKERS is set. */
export const BROKERS: { broker: StreamBroker; make: () => Promise<TestBroker> }[] = [
  { broker: "nats", make: natsBroker },
  { broker: "rabbitmq", make: rabbitmqBroker },
  { broker: "mqtt", make: mqttBroker },
  ...(KAFKA_BROKERS.length ? [{ broker: "kafka" as const, make: kafkaBroker }] : []),
];

/**
 * The test stream: `count` events keyed by id 1..count; every `badEvery`th is bad, alternating
 * between text that is not JSON and an event whose amount is not a number.
 */
export function testMessages(from: number, count: number, badEvery: number): TestMessage[] {
  const out: TestMessage[] = [];
  for (let id = from; id < from + count; id++) {
    let body: string;
    if (id % badEvery === 0) {
      body = (id / badEvery) % 2 ? `not json ${id}` : JSON.stringify({ id, amount: `lots-${id}` });
    } else {
      body = JSON.stringify({ id, name: `event ${id}`, amount: id % 1000, properties: { n: id } });
    }
    out.push({ id: `m${id}`, body });
  }
  return out;
}

/**
 * A Mosquitto of the test's own, configured as README: Stream sources asks of a broker that
 * feeds Datahus (max_queued_messages 0: a session away keeps every message). The shared one on
 * 1883 keeps Mosquitto's default of 1000 and drops the rest.
 */
export async function privateMosquitto(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "datahus-mqtt-"));
  const port = await freePort();
  const conf = join(dir, "mosquitto.conf");
  await writeFile(
    conf,
    `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nmax_inflight_messages 0\n`,
  );
  const child = spawn("mosquitto", ["-c", conf], { stdio: "ignore" });
  const url = `mqtt://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    const probe = await mqtt
      .connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 })
      .catch(() => null);
    if (probe) {
      await probe.endAsync();
      break;
    }
    if (i > 50) throw new Error("mosquitto did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    async stop() {
      child.kill("SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}
