// Kafka (kafkajs): a consumer group over the topics, offsets committed by hand after each batch
// is stored (auto-commit off), so a crash makes the group re-read from the last commit. A batch
// of a partition is handed to the engine message by message (waiting when its buffer is full,
// which holds the fetch loop: backpressure) and its offset is committed once every message of
// it was acknowledged. topic:partition:offset is the message id.
// The client library loads when a stream starts (registry.ts).
import type { Consumer, SASLOptions } from "kafkajs";
import type { BrokerConfig } from "../stream.config.js";
import type { MessageSink, StreamAdapter, StreamMessage } from "./adapter.js";

interface Handle {
  acked: () => void;
}

export function kafkaSasl(
  config: BrokerConfig<"kafka">,
  secrets: Record<string, string>,
): SASLOptions | undefined {
  if (!config.sasl) return undefined;
  const { mechanism, username } = config.sasl;
  return { mechanism, username, password: secrets.saslPassword ?? "" } as SASLOptions;
}

export function kafkaAdapter(config: BrokerConfig<"kafka">, secrets: Record<string, string>): StreamAdapter {
  let consumer: Consumer | null = null;
  /** The last lag each partition's batch reported. */
  const lags = new Map<string, number>();

  return {
    async start(sink: MessageSink) {
      const { Kafka, logLevel } = await import("kafkajs");
      const kafka = new Kafka({
        clientId: "datahus-stream",
        brokers: config.brokers,
        ssl: config.ssl,
        sasl: kafkaSasl(config, secrets),
        logLevel: logLevel.NOTHING,
      });
      consumer = kafka.consumer({ groupId: config.groupId });
      consumer.on(consumer.events.CRASH, (event) => {
        if (!event.payload.restart) sink.fail(event.payload.error);
      });
      await consumer.connect();
      await consumer.subscribe({ topics: config.topics, fromBeginning: config.fromBeginning });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        eachBatch: async ({ batch, isRunning, isStale, heartbeat }) => {
          const acked: Promise<void>[] = [];
          for (const message of batch.messages) {
            if (!isRunning() || isStale()) return;
            let done!: () => void;
            acked.push(new Promise<void>((resolve) => (done = resolve)));
            const handle: Handle = { acked: done };
            await sink.push({
              id: `${batch.topic}:${batch.partition}:${message.offset}`,
              origin: batch.topic,
              body: message.value ?? Buffer.alloc(0),
              handle,
            });
            await heartbeat();
          }
          await Promise.all(acked);
          const last = batch.lastOffset();
          await consumer!.commitOffsets([
            { topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() },
          ]);
          lags.set(`${batch.topic}:${batch.partition}`, Number(batch.offsetLag()));
        },
      });
    },

    ack(batch: readonly StreamMessage[]) {
      for (const m of batch) (m.handle as Handle).acked();
      return Promise.resolve();
    },

    lag() {
      if (!lags.size) return Promise.resolve(null);
      let total = 0;
      for (const lag of lags.values()) total += lag;
      return Promise.resolve(total);
    },

    async close() {
      await consumer?.disconnect().catch(() => {});
      consumer = null;
    },
  };
}
