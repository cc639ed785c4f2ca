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
  redis: Redis;
}

export function createStores(config: Config, log: Logger): Stores {
  const redis = new Redis(config.REDIS_URL, {
    keyPrefix: config.REDIS_KEY_PREFIX,
    // Fail fast while disconnected instead of queueing: callers (and /ready) see the outage.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    lazyConnect: true,
  });
  redis.on("error", (err) => log.warn({ err }, "redis connection error"));
  redis.connect().catch(() => {
    // Reconnects on its own; /ready reports Redis until it does.
  });
  return {
    prisma: createPrisma(config.DATABASE_URL, config.DATABASE_POOL_SIZE),
    clickhouse: createClickHouse(config),
    redis,
  };
}

/** Used request signatures, remembered in Redis for the replay window. */
export function redisNonceStore(redis: Redis): NonceStore {
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

export async function closeStores(stores: Stores): Promise<void> {
  await Promise.allSettled([
    stores.prisma.$disconnect(),
    stores.clickhouse.close(),
    stores.redis.quit().catch(() => stores.redis.disconnect()),
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
function firstRedisConnection(redis: Redis, ms: number): Promise<void> {
  if (redis.status === "ready") return Promise.resolve();
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
    redisNonceStore(stores.redis),
    log,
    bossQueue(boss),
  );
  const channels = createLiveChannels(config, log);
  services.events.addSink(new RedisEventSink(channels.publisher, config.REDIS_KEY_PREFIX));
  const live = new LiveService(
    channels.pubSub,
    channels.subscriber,
    services.reads,
    services.pipelines,
    stores.prisma,
    { prefix: config.REDIS_KEY_PREFIX, recheckMs: config.SUBSCRIPTION_RECHECK_SECONDS * 1000 },
  );
  await startJobs(config, "api", services, log, boss);
  const http = await createHttpServer({
    live,
    config,
    log,
    metrics: new Metrics(() => services.pipelines.streamStates()),
    services,
    redis: stores.redis,
    readinessChecks: {
      postgres: () => stores.prisma.$queryRaw`SELECT 1`,
      redis: () => stores.redis.ping(),
      clickhouse: () => stores.clickhouse.ping(),
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
      await boss.stop({ graceful: true, timeout: config.SHUTDOWN_TIMEOUT_MS });
      await services.usage.close();
      await channels.close();
      await closeStores(stores);
    },
  };
}

/**
 * For processes without an HTTP server (the worker): their events still reach live subscribers
 * on every API process. Returns the connection, to quit on shutdown.
 */
export function forwardLiveEvents(config: Config, log: Logger, events: EventBus): Redis {
  const publisher = pubSubConnection(config, log, "publisher");
  events.addSink(new RedisEventSink(publisher, config.REDIS_KEY_PREFIX));
  return publisher;
}
