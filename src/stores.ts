// The stores every process role opens (PostgreSQL, ClickHouse, Redis) and what a process without
// the HTTP server shares with the API through them. Apart from app.ts so that a worker, `migrate`
// or `seed` does not load the API's module graph (Fastify, GraphQL schema, live subscriptions).
import { Redis } from "ioredis";
import type { Config } from "./config.js";
import { createClickHouse, type ClickHouse } from "./db/clickhouse.js";
import { createPrisma } from "./db/prisma.js";
import type { PrismaClient } from "./generated/prisma/client.js";
import type { Logger } from "./observability/logger.js";
import { AppError } from "./errors.js";
import type { NonceStore } from "./identity/auth.service.js";
import { RedisEventSink, pubSubConnection } from "./events/live-channels.js";
import type { EventBus } from "./events/events.js";

export interface Stores {
  prisma: PrismaClient;
  clickhouse: ClickHouse;
  /** Null when REDIS_URL is unset: counters and live events stay in this process. */
  redis: Redis | null;
}

export function createStores(config: Config, log: Logger): Stores {
  return {
    prisma: createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE, config.DATABASE_PREPARED_STATEMENTS),
    clickhouse: createClickHouse(config),
    redis: config.REDIS_URL ? connectRedis(config.REDIS_URL, config.REDIS_KEY_PREFIX, log) : null,
  };
}

function connectRedis(url: string, keyPrefix: string, log: Logger): Redis {
  const redis = new Redis(url, {
    keyPrefix,
    // Fail fast while disconnected instead of queueing: callers (and /ready) see the outage.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  redis.on("error", (err) => log.warn({ err }, "redis connection error"));
  redis.connect().catch(() => {
    // Reconnects on its own; /ready reports Redis until it does.
  });
  return redis;
}

/**
 * Used request signatures, remembered for the replay window: in Redis, so that every process
 * refuses a replay, or in this process when there is no Redis.
 */
export function nonceStore(redis: Redis | null): NonceStore {
  if (!redis) return processNonceStore();
  return {
    async claim(key, ttlSeconds) {
      try {
        return (await redis.set(`sig:${key}`, "1", "EX", ttlSeconds, "NX")) === "OK";
      } catch (cause) {
        throw new AppError(
          "SERVICE_UNAVAILABLE",
          "Signed requests cannot be checked right now",
          { retryAfterSeconds: 5 },
          { cause },
        );
      }
    },
  };
}

function processNonceStore(): NonceStore {
  const expiries = new Map<string, number>();
  return {
    async claim(key, ttlSeconds) {
      const now = Date.now();
      if ((expiries.get(key) ?? 0) > now) return false;
      // Forget what has expired now and then, so the map holds about one window of signatures.
      if (expiries.size > 10_000) for (const [k, at] of expiries) if (at <= now) expiries.delete(k);
      expiries.set(key, now + ttlSeconds * 1000);
      return true;
    },
  };
}

export async function closeStores(stores: Stores): Promise<void> {
  const { redis } = stores;
  await Promise.allSettled([
    stores.prisma.$disconnect(),
    stores.clickhouse.close(),
    redis?.quit().catch(() => redis.disconnect()),
  ]);
}

/**
 * For processes without an HTTP server (the worker): their events still reach live subscribers
 * on every API process. Returns the connection, to quit on shutdown; null without Redis, when no
 * other process can hear them (`datahus all` shares its bus with the API instead).
 */
export function forwardLiveEvents(config: Config, log: Logger, events: EventBus): Redis | null {
  if (!config.REDIS_URL) {
    log.warn("REDIS_URL is not set: live subscribers in other processes will not hear this worker's events");
    return null;
  }
  const publisher = pubSubConnection({ ...config, REDIS_URL: config.REDIS_URL }, log, "publisher");
  events.addSink(new RedisEventSink(publisher, config.REDIS_KEY_PREFIX));
  return publisher;
}
