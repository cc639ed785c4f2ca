// Wires stores, services and the HTTP server. Used by `datahus serve` and by the tests, which
// boot the same app on real services.
import type { FastifyInstance } from "fastify";
import type { Redis } from "ioredis";
import type { Config } from "./config.js";
import { createHttpServer } from "./http/server.js";
import { createLogger, type Logger } from "./observability/logger.js";
import { Metrics } from "./observability/metrics.js";
import { createServices, type Services } from "./services.js";
import { createBoss } from "./jobs/boss.js";
import { bossQueue } from "./jobs/queue.js";
import { startJobs } from "./jobs/worker.js";
import { createLiveChannels } from "./events/live-channels.js";
import { LiveService } from "./subscriptions/live.service.js";
import { closeStores, createStores, nonceStore, type Stores } from "./stores.js";

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
