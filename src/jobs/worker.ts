import type { PgBoss } from "pg-boss";
import type { Config } from "../config.js";
import type { Logger } from "../observability/logger.js";
import type { Services } from "../services.js";
import { createBoss, createQueues, workQueues } from "./boss.js";
import { jobDefinitions } from "./registry.js";

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
