import type { InsertOptions, JobInsert, PgBoss, SendOptions } from "pg-boss";

/**
 * What services use to hand work to the worker: send a job now or later, and keep per-object cron
 * schedules (one per pipeline or delivery, keyed by its id). API and worker processes both hold
 * one; only workers run the handlers and the cron pass (jobs/boss.ts).
 */
export interface JobQueue {
  send<Data extends object>(queue: string, data: Data, options?: SendOptions): Promise<string | null>;
  /** Many jobs in one statement (ids already taken are skipped); `db` puts it in a transaction. */
  insert<Data extends object>(queue: string, jobs: JobInsert<Data>[], options?: InsertOptions): Promise<void>;
  /** Creates or replaces the schedule `key` of `queue` (cron in UTC). */
  schedule<Data extends object>(queue: string, key: string, cron: string, data: Data): Promise<void>;
  unschedule(queue: string, key: string): Promise<void>;
  /** Cancels jobs that have not finished; a no-op for those that have (or never were). */
  cancel(queue: string, jobId: string | string[]): Promise<void>;
}

export function bossQueue(boss: PgBoss): JobQueue {
  return {
    send: (queue, data, options) => boss.send(queue, data, options ?? {}),
    async insert(queue, jobs, options) {
      if (jobs.length) await boss.insert(queue, jobs, options);
    },
    schedule: (queue, key, cron, data) => boss.schedule(queue, cron, data, { key, tz: "UTC" }),
    unschedule: (queue, key) => boss.unschedule(queue, key),
    async cancel(queue, jobId) {
      await boss.cancel(queue, jobId);
    },
  };
}
