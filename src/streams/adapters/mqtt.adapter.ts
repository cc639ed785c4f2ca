// MQTT: a persistent session (clean start off, a session expiry) subscribed at QoS 1, so the
// broker keeps messages while no consumer is connected and re-sends unacknowledged ones on the
// next connection. MQTT.js sends a QoS 1 PUBACK as soon as a message is handled and handles the
// next message only after that (MQTT.js issues #691, #1160: no manual acknowledgement), so the
// PUBACKs are held here and sent, in order, once the engine stored their batch. MQTT gives no
// message id that survives re-delivery: key the dataset on a field of the payload.
//
// Flow control: Mosquitto queues what a session cannot take now (its consumer away, or the
// receive maximum of unacknowledged messages reached) up to max_queued_messages (default 1000)
// and DROPS the rest. So the receive maximum is MQTT's largest (65,535): the broker hands
// messages over at once and they wait, unacknowledged, in the engine's buffer. Raise
// max_queued_messages (or set 0) on brokers that feed stream sources, or a consumer away for
// long loses messages whatever the client does (README: Stream sources).
// The client library loads when a stream starts (registry.ts).
import type { IPublishPacket, MqttClient, Packet } from "mqtt";
import type { BrokerConfig } from "../stream.config.js";
import type { MessageSink, StreamAdapter, StreamMessage } from "./adapter.js";

/** MQTT 5's largest: see the flow control note above. */
const RECEIVE_MAXIMUM = 65_535;

type SendPacket = (packet: Packet, callback?: () => void, ...rest: unknown[]) => void;
/** A message's PUBACK: packet ids are reused across connections, so the connection is named too. */
interface Handle {
  connection: number;
  packetId: number;
}

export function mqttAdapter(config: BrokerConfig<"mqtt">, secrets: Record<string, string>): StreamAdapter {
  let client: MqttClient | null = null;
  let send: SendPacket | null = null;
  /** PUBACKs held back, by packet id, until their message is stored. */
  const held = new Map<number, Packet>();
  let connection = 0;

  return {
    async start(sink: MessageSink) {
      // Built unconnected: re-sent messages can arrive with the CONNACK, and they must meet the
      // held PUBACKs and the message handler, or they are acknowledged unseen.
      const { default: mqtt } = await import("mqtt");
      const c = mqtt.connect(config.url, {
        clientId: config.clientId,
        clean: false,
        protocolVersion: 5,
        username: config.username,
        password: secrets.password,
        reconnectPeriod: 1000,
        manualConnect: true,
        properties: { sessionExpiryInterval: config.sessionExpirySeconds, receiveMaximum: RECEIVE_MAXIMUM },
      });
      client = c;
      const internal = c as unknown as { _sendPacket: SendPacket };
      const original = internal._sendPacket.bind(c);
      send = original;
      internal._sendPacket = (packet, callback, ...rest) => {
        if (packet.cmd === "puback" && packet.messageId !== undefined) {
          held.set(packet.messageId, packet);
          callback?.();
          return;
        }
        original(packet, callback, ...rest);
      };
      c.on("message", (topic, payload, packet: IPublishPacket) => {
        const handle: Handle | null = packet.qos ? { connection, packetId: packet.messageId ?? -1 } : null;
        void sink.push({ id: null, origin: topic, body: payload, handle });
      });
      const subscribe = () => c.subscribeAsync(config.topics, { qos: 1 });
      let first = true;
      // A session the broker still has keeps its subscriptions; a new or expired one gets them.
      c.on("connect", (connack) => {
        if (first) return;
        // The broker re-sends what the old connection left unacknowledged; its PUBACKs are void.
        connection++;
        held.clear();
        if (!connack.sessionPresent) void subscribe().catch((e: Error) => sink.fail(e));
      });
      await new Promise<void>((resolve, reject) => {
        c.once("connect", () => resolve());
        c.once("error", reject);
        c.connect();
      }).catch((error: unknown) => {
        c.end(true);
        throw error;
      });
      first = false;
      c.on("error", () => {});
      await subscribe();
    },

    ack(batch: readonly StreamMessage[]) {
      for (const m of batch) {
        const handle = m.handle as Handle | null;
        if (!handle || handle.connection !== connection) continue;
        const packet = held.get(handle.packetId);
        if (!packet) continue;
        held.delete(handle.packetId);
        send?.(packet);
      }
      return Promise.resolve();
    },

    lag: () => Promise.resolve(null),

    async close() {
      // Ends without the held PUBACKs: the broker keeps those messages for the next consumer.
      await client?.endAsync(true).catch(() => {});
      client = null;
      held.clear();
    },
  };
}
