import type { PgBoss } from "pg-boss";
import type { Config } from "../config.js";
import type { Logger } from "../observability/logger.js";
import type { Services } from "../services.js";
import { createBoss, createQueues, workQueues } from "./boss.js";
import { jobDefinitions } from "./registry.js";
import { serveWorkerMetrics } from "../observability/worker-metrics.js";

/**
 * Starts pg-boss for a process. API processes create the queues (so they can send before any
 * worker ran) but work none; workers also run every handler and the cron pass. Stop the returned
 * boss on shutdown: `boss.stop({ graceful: true, timeout })`.
 */
export async function startJobs(
  config: Config,
  role: "api" | "worker",
  services: Services,
  log: Logger,
  boss: PgBoss = createBoss(config, role),
): Promise<PgBoss> {
  const definitions = jobDefinitions(services, config);
  boss.on("error", (err) => log.error({ err }, "pg-boss error"));
  await boss.start();
  await createQueues(boss, definitions);
  if (role === "worker") {
    await workQueues(boss, definitions, log);
    log.info({ queues: definitions.map((d) => d.queue) }, "datahus worker started");
  }
  return boss;
}

/**
 * The worker's /metrics on WORKER_METRICS_HOST:WORKER_METRICS_PORT, with the depth of every queue
 * of `boss` and of webhooks' first tries; null when the port is unset. Close the returned server on shutdown.
 */
export async function serveWorkerMetricsFor(
  config: Pick<Config, "WORKER_METRICS_PORT" | "WORKER_METRICS_HOST">,
  services: Pick<Services, "workerMetrics" | "webhooks">,
  boss: Pick<PgBoss, "getQueues">,
  log: Logger,
): Promise<{ url: string; close(): Promise<void> } | null> {
  if (config.WORKER_METRICS_PORT === undefined) return null;
  const metrics = services.workerMetrics;
  // Webhooks' first tries wait in a table of their own, not in pg-boss (webhook.dispatcher.ts).
  metrics.watchQueues(async () => [...(await boss.getQueues()), await services.webhooks.firstTriesDepth()]);
  const { url, server } = await serveWorkerMetrics(
    metrics,
    config.WORKER_METRICS_HOST,
    config.WORKER_METRICS_PORT,
  );
  log.info({ url: `${url}/metrics` }, "worker metrics listening");
  return { url, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
