// The Kafka adapter's own wiring. Its settings (SASL from the source's secrets, TLS) are checked
// everywhere; against a broker only where KAFKA_BROKERS names one (none can be installed on these
// machines: the test says so and skips). There it checks what the engine's contract
// (stream-engine.test.ts, run on Kafka too when KAFKA_BROKERS is set) takes for granted: ids are
// topic:partition:offset, offsets are committed for the group only once acknowledged, so a new
// consumer of the group gets what the last one took and did not acknowledge, and nothing else.
import { describe, expect, it } from "vitest";
import { MessageBuffer, type StreamMessage } from "../../src/streams/adapters/adapter.js";
import { kafkaAdapter, kafkaSasl } from "../../src/streams/adapters/kafka.adapter.js";
import { parseStreamConfig, type BrokerConfig } from "../../src/streams/stream.config.js";
import { KAFKA_BROKERS, kafkaBroker, testMessages } from "../support/brokers.js";

const kafkaConfig = (extra: Record<string, unknown> = {}) =>
  parseStreamConfig({
    broker: "kafka",
    brokers: ["k1:9093"],
    topics: ["t"],
    groupId: "g",
    ...extra,
  }) as BrokerConfig<"kafka">;

describe("Kafka settings", () => {
  it("logs in with SASL from the source's secrets, and only when asked", () => {
    expect(kafkaSasl(kafkaConfig(), { saslPassword: "x" })).toBeUndefined();
    const config = kafkaConfig({ ssl: true, sasl: { mechanism: "scram-sha-512", username: "datahus" } });
    expect(config.ssl).toBe(true);
    expect(kafkaSasl(config, { saslPassword: "s3cret" })).toEqual({
      mechanism: "scram-sha-512",
      username: "datahus",
      password: "s3cret",
    });
  });
});

if (!KAFKA_BROKERS.length) {
  console.log("kafka-adapter: wiring skipped: no Kafka broker here; set KAFKA_BROKERS=host:port to run it");
}

/** Takes `count` messages from the buffer (waiting up to 30 s in all). */
async function take(buffer: MessageBuffer, count: number): Promise<StreamMessage[]> {
  const out: StreamMessage[] = [];
  const deadline = Date.now() + 30_000;
  while (out.length < count && Date.now() < deadline)
    out.push(...(await buffer.take(count - out.length, 200)));
  return out;
}

describe.skipIf(!KAFKA_BROKERS.length)("the Kafka adapter on a broker", () => {
  it("commits a group's offsets only once acknowledged, with topic:partition:offset ids", async () => {
    const broker = await kafkaBroker();
    try {
      const config = parseStreamConfig(broker.config) as BrokerConfig<"kafka">;
      await broker.publish(testMessages(1, 10, 1000));

      const first = kafkaAdapter(config, {});
      const firstBuffer = new MessageBuffer(100);
      await first.start(firstBuffer);
      const taken = await take(firstBuffer, 10);
      expect(taken).toHaveLength(10);
      expect(taken.every((m) => /^dh_\w+:\d+:\d+$/.test(m.id ?? ""))).toBe(true);
      firstBuffer.close();
      await first.close(); // nothing acknowledged

      const second = kafkaAdapter(config, {});
      const secondBuffer = new MessageBuffer(100);
      await second.start(secondBuffer);
      const again = await take(secondBuffer, 10);
      expect(again.map((m) => m.id).sort()).toEqual(taken.map((m) => m.id).sort());
      await second.ack(again);
      // The commit follows the acknowledgement; give the batch a moment to commit, then leave.
      await new Promise((r) => setTimeout(r, 1000));
      secondBuffer.close();
      await second.close();

      const third = kafkaAdapter(config, {});
      const thirdBuffer = new MessageBuffer(100);
      await third.start(thirdBuffer);
      await broker.publish(testMessages(11, 1, 1000));
      const rest = await take(thirdBuffer, 1);
      expect(rest.map((m) => JSON.parse(Buffer.from(m.body).toString()).id)).toEqual([11]);
      thirdBuffer.close();
      await third.close();
    } finally {
      await broker.cleanup();
    }
  }, 120_000);
});
