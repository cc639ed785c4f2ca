// Live subscriptions in any API process hear of events published in any process (API or worker)
// through Redis pub/sub: each event a subscription can follow is published on a channel named
// after its type and the object it is about, and an API process subscribes to a channel while
// one of its clients follows that object (subscriptions/live.service.ts).
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { createPubSub, type PubSub } from "@graphql-yoga/subscription";
import { Redis } from "ioredis";
import type { Config } from "../config.js";
import type { Logger } from "../observability/logger.js";
import type { DomainEvent, EventSink } from "./events.js";

/** The events live subscriptions follow. */
export type LiveEvent = Extract<
  DomainEvent,
  { type: "dataset.updated" | "pipeline.run.updated" | "delivery.updated" | "access.revoked" }
>;
export type LiveEventType = LiveEvent["type"];

/** One channel per followed object; the payload is the DomainEvent as JSON. */
export type LivePubSub = PubSub<Record<string, [LiveEvent]>>;

/**
 * The channel of `type` events about one object. Channels are not keys, so ioredis's keyPrefix
 * does not apply to them: the installation's prefix is part of the name.
 */
export function liveChannel(prefix: string, type: LiveEventType, objectId: string): string {
  return `${prefix}live:${type}:${objectId}`;
}

/** access.revoked events share one channel: every API process follows it. */
export const ACCESS_CHANNEL = "all";

function channelOf(prefix: string, event: DomainEvent): string | null {
  switch (event.type) {
    case "dataset.updated":
      return liveChannel(prefix, event.type, event.data.datasetId);
    case "pipeline.run.updated":
      return liveChannel(prefix, event.type, event.data.pipelineId);
    case "delivery.updated":
      return liveChannel(prefix, event.type, event.data.deliveryId);
    case "access.revoked":
      return liveChannel(prefix, event.type, ACCESS_CHANNEL);
    default:
      return null;
  }
}

/**
 * Forwards the events live subscriptions follow to Redis. Best effort, like the subscriptions
 * themselves: an event published while Redis is down is logged by the bus and lost to live
 * subscribers (webhooks and file drops are the durable channels).
 */
export class RedisEventSink implements EventSink {
  readonly name = "redis-live";

  constructor(
    private readonly publisher: Redis,
    private readonly prefix: string,
  ) {}

  async handle(event: DomainEvent): Promise<void> {
    const channel = channelOf(this.prefix, event);
    if (channel) await this.publisher.publish(channel, JSON.stringify(event));
  }
}

/**
 * A connection for pub/sub alone: a subscribing connection can run no other command, and the
 * app's main client fails fast while disconnected, where a publish may wait for a reconnect.
 */
export function pubSubConnection(
  config: Config & { REDIS_URL: string },
  log: Logger,
  role: "publisher" | "subscriber",
): Redis {
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on("error", (err) => log.warn({ err, role }, "redis pub/sub connection error"));
  redis.connect().catch(() => {
    // Reconnects on its own (and subscribes again to its channels).
  });
  return redis;
}

/**
 * The channels an API process follows: over Redis between processes, or inside this process
 * alone when Redis is not configured (`datahus all` on one machine).
 */
export interface LiveChannels {
  pubSub: LivePubSub;
  /** Hands the events live subscriptions follow to every process's channels. */
  sink: EventSink;
  /**
   * Resolves once messages on `channel` reach this process (Redis confirmed the SUBSCRIBE);
   * rejects when they cannot.
   */
  confirm(channel: string): Promise<void>;
  /**
   * Calls `listener` with every message on `channel`, subscribing again after a reconnect, until
   * the returned function is called.
   */
  listen(channel: string, listener: (message: string) => void): () => Promise<void>;
  close(): Promise<void>;
}

/** The two connections and the PubSub an API process follows channels with. */
export function createLiveChannels(config: Config, log: Logger): LiveChannels {
  const url = config.REDIS_URL;
  return url ? redisChannels({ ...config, REDIS_URL: url }, log) : processChannels(config.REDIS_KEY_PREFIX);
}

function redisChannels(config: Config & { REDIS_URL: string }, log: Logger): LiveChannels {
  const publisher = pubSubConnection(config, log, "publisher");
  const subscriber = pubSubConnection(config, log, "subscriber");
  const pubSub: LivePubSub = createPubSub({
    eventTarget: createRedisEventTarget({ publishClient: publisher, subscribeClient: subscriber }),
  });
  return {
    pubSub,
    sink: new RedisEventSink(publisher, config.REDIS_KEY_PREFIX),
    async confirm(channel) {
      await subscriber.subscribe(channel);
    },
    listen(channel, listener) {
      // Straight on the subscribing connection rather than through the PubSub: its event target
      // leaves a failed SUBSCRIBE (Redis down at start) unhandled, and this one must be retried.
      const onMessage = (from: string, message: string) => {
        if (from === channel) listener(message);
      };
      const subscribe = () => void subscriber.subscribe(channel).catch(() => undefined);
      subscriber.on("message", onMessage);
      subscriber.on("ready", subscribe);
      subscribe();
      return async () => {
        subscriber.off("message", onMessage);
        subscriber.off("ready", subscribe);
        await subscriber.unsubscribe(channel).catch(() => undefined);
      };
    },
    async close() {
      await Promise.allSettled(
        [publisher, subscriber].map((redis) => redis.quit().catch(() => redis.disconnect())),
      );
    },
  };
}

/**
 * Channels inside one process. Events cross as JSON, exactly as they would through Redis, so
 * subscribers see the same shapes (dates as strings) whichever channels carry them.
 */
function processChannels(prefix: string): LiveChannels {
  const pubSub: LivePubSub = createPubSub();
  const listeners = new Map<string, Set<(message: string) => void>>();
  return {
    pubSub,
    sink: {
      name: "process-live",
      async handle(event) {
        const channel = channelOf(prefix, event);
        if (!channel) return;
        const message = JSON.stringify(event);
        pubSub.publish(channel, JSON.parse(message) as LiveEvent);
        for (const listener of listeners.get(channel) ?? []) listener(message);
      },
    },
    async confirm() {},
    listen(channel, listener) {
      const set = listeners.get(channel) ?? new Set();
      listeners.set(channel, set.add(listener));
      return async () => {
        set.delete(listener);
      };
    },
    async close() {},
  };
}
