// NATS JetStream: a durable pull consumer with explicit acks. Its position lives on the server,
// so a new worker continues where the last one acknowledged; a message delivered to a worker that
// died is delivered again after ackWaitSeconds. The stream sequence is the message id.
// The client libraries load when a stream starts (registry.ts).
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { BrokerConfig } from "../stream.config.js";
import type { MessageSink, StreamAdapter, StreamMessage } from "./adapter.js";

export function natsAdapter(
  config: BrokerConfig<"nats">,
  secrets: Record<string, string>,
  capacity: number,
): StreamAdapter {
  let nc: NatsConnection | null = null;
  let stopping = false;
  let pump: Promise<void> | null = null;
  let stopConsume: (() => void) | null = null;

  return {
    async start(sink: MessageSink) {
      const { connect, nanos } = await import("@nats-io/transport-node");
      const { AckPolicy, jetstream, jetstreamManager } = await import("@nats-io/jetstream");
      nc = await connect({
        servers: config.servers,
        ...(config.user ? { user: config.user, pass: secrets.password } : {}),
        ...(secrets.token ? { token: secrets.token } : {}),
        name: "datahus-stream",
        maxReconnectAttempts: -1,
      });
      const jsm = await jetstreamManager(nc);
      const wanted = {
        durable_name: config.durable,
        ack_policy: AckPolicy.Explicit,
        ack_wait: nanos(config.ackWaitSeconds * 1000),
        max_ack_pending: Math.max(capacity * 2, 1000),
        ...(config.filterSubject ? { filter_subject: config.filterSubject } : {}),
      };
      const existing = await jsm.consumers.info(config.stream, config.durable).catch(() => null);
      if (existing) await jsm.consumers.update(config.stream, config.durable, wanted);
      else await jsm.consumers.add(config.stream, wanted);
      const consumer = await jetstream(nc).consumers.get(config.stream, config.durable);
      const messages = await consumer.consume({ max_messages: capacity });
      stopConsume = () => void messages.stop();
      pump = (async () => {
        try {
          for await (const m of messages) {
            await sink.push({ id: String(m.seq), origin: m.subject, body: m.data, handle: m });
            if (stopping) break;
          }
        } catch (error) {
          if (!stopping) sink.fail(error as Error);
        }
      })();
    },

    ack(batch: readonly StreamMessage[]) {
      for (const m of batch) (m.handle as JsMsg).ack();
      // Acks are fire-and-forget; a flush makes sure they left before the next batch is taken.
      return nc ? nc.flush() : Promise.resolve();
    },

    async lag() {
      if (!nc || nc.isClosed()) return null;
      const { jetstreamManager } = await import("@nats-io/jetstream");
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.info(config.stream, config.durable);
      return info.num_pending;
    },

    async close() {
      stopping = true;
      stopConsume?.();
      await pump?.catch(() => {});
      await nc?.close().catch(() => {});
      nc = null;
    },
  };
}
