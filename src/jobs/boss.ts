import { PgBoss, type Queue, type WorkOptions } from "pg-boss";
import type { Config } from "../config.js";
import type { Logger } from "../observability/logger.js";

/**
 * A background job type. Domains declare theirs and list them in jobs/registry.ts; the worker
 * process creates each queue (its dead-letter queue first, as pg-boss requires) and works it.
 */
export interface JobDefinition<Data extends object = object> {
  queue: string;
  /** `policy` with a singletonKey on each send: e.g. `stately`, one active job per key. */
  options?: Omit<Queue, "name" | "deadLetter">;
  work?: WorkOptions;
  /** Jobs that exhaust their retries land here with their data, for inspection and redrive. */
  deadLetter?: boolean;
  /** A cron expression (UTC): the worker schedules the job; pg-boss runs each tick once cluster-wide. */
  schedule?: string;
  handle(data: Data, job: JobInfo): Promise<void>;
  /**
   * Takes the jobs of one fetch together instead of `handle` one by one (a throw fails them all,
   * as a throw from `handle` does): for handlers that share queries across jobs.
   */
  handleBatch?(jobs: { data: Data; info: JobInfo }[]): Promise<void>;
  /**
   * Work of its own beside the queue's, started once per worker (e.g. tries claimed from a table
   * of the domain's); the domain stops it when its services close.
   */
  start?(log: Logger): Promise<void>;
}

export interface JobInfo {
  id: string;
  log: Logger;
  /** Retries used so far (0 on the first attempt) and allowed: the last attempt can tell. */
  retryCount?: number;
  retryLimit?: number;
}

export function createBoss(config: Config, role: "api" | "worker"): PgBoss {
  return new PgBoss({
    connectionString: config.DATABASE_URL,
    schema: config.PGBOSS_SCHEMA,
    application_name: `datahus-${role}`,
    max: role === "worker" ? 4 : 2,
    // Only workers run pg-boss maintenance and cron; API processes just send.
    supervise: role === "worker",
    schedule: role === "worker",
    // Workers listen for new jobs on queues that opt in (`notify`), instead of waiting for a poll.
    useListenNotify: role === "worker",
    // How soon a job whose worker died (missed heartbeats) is noticed and retried.
    superviseIntervalSeconds: config.JOBS_MONITOR_INTERVAL_SECONDS,
    monitorIntervalSeconds: config.JOBS_MONITOR_INTERVAL_SECONDS,
  });
}

export const deadLetterQueue = (queue: string) => `${queue}.dead`;

export async function createQueues(boss: PgBoss, definitions: readonly JobDefinition[]): Promise<void> {
  for (const def of definitions) {
    if (def.deadLetter) await boss.createQueue(deadLetterQueue(def.queue));
    await boss.createQueue(def.queue, {
      ...def.options,
      ...(def.deadLetter ? { deadLetter: deadLetterQueue(def.queue) } : {}),
    });
    if (def.schedule) await boss.schedule(def.queue, def.schedule);
  }
}

/** Starts a handler per definition. A handler that throws fails the job; pg-boss retries it. */
export async function workQueues(
  boss: PgBoss,
  definitions: readonly JobDefinition[],
  log: Logger,
): Promise<void> {
  for (const def of definitions) {
    const options = { ...def.work, includeMetadata: true } as WorkOptions & { includeMetadata: true };
    await def.start?.(log.child({ queue: def.queue }));
    await boss.work<object, unknown, typeof options>(def.queue, options, async (jobs) => {
      if (def.handleBatch) {
        const queueLog = log.child({ queue: def.queue });
        const started = performance.now();
        try {
          await def.handleBatch(jobs.map((job) => ({ data: job.data, info: { id: job.id, log: queueLog } })));
        } catch (error) {
          queueLog.error({ err: error, jobIds: jobs.map((job) => job.id) }, "jobs failed");
          throw error;
        }
        queueLog.debug({ jobs: jobs.length, ms: Math.round(performance.now() - started) }, "jobs done");
        return;
      }
      for (const job of jobs) {
        const jobLog = log.child({ queue: def.queue, jobId: job.id });
        const started = performance.now();
        try {
          await def.handle(job.data, {
            id: job.id,
            log: jobLog,
            retryCount: job.retryCount,
            retryLimit: job.retryLimit,
          });
          jobLog.info({ ms: Math.round(performance.now() - started) }, "job done");
        } catch (error) {
          jobLog.error({ err: error }, "job failed");
          throw error;
        }
      }
    });
  }
}
