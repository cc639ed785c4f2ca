// RabbitMQ: a durable queue consumed with manual acks and a prefetch equal to what the engine
// buffers, so the broker stops delivering while batches wait to be written. Unacknowledged
// deliveries go back to the queue when the channel closes (a crash included). The message-id
// property, when the publisher sets one, is the message id.
// The client library loads when a stream starts (registry.ts).
import type { Channel, ChannelModel, ConsumeMessage } from "amqplib";
import type { BrokerConfig } from "../stream.config.js";
import type { MessageSink, StreamAdapter, StreamMessage } from "./adapter.js";

export function rabbitmqAdapter(
  config: BrokerConfig<"rabbitmq">,
  secrets: Record<string, string>,
  capacity: number,
): StreamAdapter {
  let connection: ChannelModel | null = null;
  let channel: Channel | null = null;
  let stopping = false;

  return {
    async start(sink: MessageSink) {
      const url = new URL(config.url);
      if (secrets.password) url.password = secrets.password;
      const { default: amqp } = await import("amqplib");
      connection = await amqp.connect(url.toString(), {
        clientProperties: { connection_name: "datahus-stream" },
      });
      const lost = (error?: Error) => {
        if (!stopping) sink.fail(error ?? new Error("The RabbitMQ connection closed"));
      };
      connection.on("error", () => {});
      connection.on("close", lost);
      channel = await connection.createChannel();
      channel.on("error", () => {});
      channel.on("close", () => lost(new Error("The RabbitMQ channel closed")));
      if (config.declare) await channel.assertQueue(config.queue, { durable: true });
      else await channel.checkQueue(config.queue);
      // At most `capacity` unacknowledged deliveries: the rest wait in the queue.
      await channel.prefetch(capacity);
      await channel.consume(
        config.queue,
        (msg: ConsumeMessage | null) => {
          if (!msg) return lost(new Error(`The queue ${config.queue} was deleted or the consumer cancelled`));
          const id = typeof msg.properties.messageId === "string" ? msg.properties.messageId : null;
          void sink.push({ id, origin: config.queue, body: msg.content, handle: msg });
        },
        { noAck: false },
      );
    },

    ack(batch: readonly StreamMessage[]) {
      // Deliveries come in order on one channel: acknowledging the last acknowledges the batch.
      const last = batch.at(-1);
      if (last && channel) channel.ack(last.handle as ConsumeMessage, true);
      return Promise.resolve();
    },

    async lag() {
      if (!connection) return null;
      // A channel of its own: checkQueue on a missing queue closes the channel it runs on.
      const side = await connection.createChannel();
      side.on("error", () => {});
      try {
        const { messageCount } = await side.checkQueue(config.queue);
        return messageCount;
      } finally {
        await side.close().catch(() => {});
      }
    },

    async close() {
      stopping = true;
      await channel?.close().catch(() => {});
      await connection?.close().catch(() => {});
      channel = null;
      connection = null;
    },
  };
}
