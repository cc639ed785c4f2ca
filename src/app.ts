// Wires stores, services and the HTTP server. Used by `datahus serve` and by the tests, which
// boot the same app on real services.
import type { FastifyInstance } from "fastify";
import { Redis } from "ioredis";
import type { Config } from "./config.js";
import { createClickHouse, type ClickHouse } from "./db/clickhouse.js";
import { createPrisma } from "./db/prisma.js";
import type { PrismaClient } from "./generated/prisma/client.js";
import { createHttpServer } from "./http/server.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { createServices, type Services } from "./services.js";
import { AppError } from "./errors.js";
import type { NonceStore } from "./identity/auth.service.js";
import { createBoss } from "./jobs/boss.js";
import { bossQueue } from "./jobs/queue.js";
import { startJobs } from "./jobs/worker.js";
import { RedisEventSink, createLiveChannels, pubSubConnection } from "./events/live-channels.js";
import { LiveService } from "./subscriptions/live.service.js";
import type { EventBus } from "./events/events.js";

export interface Stores {
  prisma: PrismaClient;
  clickhouse: ClickHouse;
  /** Null when REDIS_URL is unset: counters and live events stay in this process. */
  redis: Redis | null;
}

export function createStores(config: Config, log: Logger): Stores {
  return {
    prisma: createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE),
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

export interface App {
  config: Config;
  log: Logger;
  stores: Stores;
  services: Services;
  http: FastifyInstance;
  /** Live subscriptions in this process. */
  live: LiveService;
  /** Starts listening; resolves to the base URL (useful with PORT=0). */
  listen(): Promise<string>;
  /** Stops accepting connections, lets requests in flight finish, then closes the stores. */
  close(): Promise<void>;
}

/** Waits up to `ms` for Redis's first connection; the app starts either way and /ready tells. */
function firstRedisConnection(redis: Redis | null, ms: number): Promise<void> {
  if (!redis || redis.status === "ready") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      redis.off("ready", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    redis.once("ready", done);
  });
}

export async function createApp(config: Config, options: { log?: Logger } = {}): Promise<App> {
  const log = options.log ?? createLogger(config);
  const stores = createStores(config, log);
  await firstRedisConnection(stores.redis, 2000);
  const boss = createBoss(config, "api");
  const services = createServices(
    stores.prisma,
    stores.clickhouse,
    config,
    nonceStore(stores.redis),
    log,
    bossQueue(boss),
  );
  const channels = createLiveChannels(config, log);
  services.events.addSink(channels.sink);
  const live = new LiveService(channels.pubSub, channels, services.reads, services.pipelines, stores.prisma, {
    prefix: config.REDIS_KEY_PREFIX,
    recheckMs: config.SUBSCRIPTION_RECHECK_SECONDS * 1000,
  });
  // Access changed for an account somewhere (any process): its callers are read again here.
  const stopForgetting = live.onAccessRevoked((event) => services.auth.forgetAccount(event.data.accountId));
  await startJobs(config, "api", services, log, boss);
  const metrics = new Metrics(() => services.pipelines.streamStates());
  // Credits are charged where reads are served: here, and on workers for drops.
  for (const shared of services.workerMetrics.shared()) metrics.registry.registerMetric(shared);
  const http = await createHttpServer({
    live,
    config,
    log,
    metrics,
    services,
    redis: stores.redis,
    readinessChecks: {
      postgres: () => stores.prisma.$queryRaw`SELECT 1`,
      ...(stores.redis ? { redis: () => stores.redis!.ping() } : {}),
      clickhouse: async () => {
        if (!(await stores.clickhouse.ping())) return false;
        return { engine: stores.clickhouse.engine, version: (await stores.clickhouse.version()).text };
      },
    },
  });
  return {
    config,
    log,
    stores,
    services,
    http,
    live,
    async listen() {
      return http.listen({ host: config.HOST, port: config.PORT });
    },
    async close() {
      await http.close();
      await stopForgetting();
      await services.auth.flushLastUsed();
      await services.eventIngest.flush();
      await boss.stop({ graceful: true, timeout: config.SHUTDOWN_TIMEOUT_MS });
      await services.usage.close();
      await services.webhooks.close();
      await channels.close();
      await closeStores(stores);
    },
  };
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
