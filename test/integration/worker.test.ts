// The worker's job plumbing on a real pg-boss: queues are created (dead letters first), handlers
// run, failures are retried and then dead-lettered with their data.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PgBoss } from "pg-boss";
import {
  createBoss,
  createQueues,
  deadLetterQueue,
  workQueues,
  type JobDefinition,
} from "../../src/jobs/boss.js";
import { createLogger } from "../../src/observability/logger.js";
import { baseConfig, freshPostgres } from "../support/databases.js";

let boss: PgBoss;
let dropDatabase: () => Promise<void>;
const handled: string[] = [];
const attempts = new Map<string, number>();

const echo: JobDefinition<{ word: string }> = {
  queue: "test.echo",
  work: { pollingIntervalSeconds: 0.5 },
  async handle({ word }) {
    handled.push(word);
  },
};

const scheduled: JobDefinition = {
  queue: "test.scheduled",
  schedule: "*/5 * * * *",
  async handle() {},
};

const flaky: JobDefinition<{ key: string }> = {
  queue: "test.flaky",
  options: { retryLimit: 2, retryDelay: 0 },
  deadLetter: true,
  work: { pollingIntervalSeconds: 0.5 },
  async handle({ key }) {
    attempts.set(key, (attempts.get(key) ?? 0) + 1);
    throw new Error(`refusing ${key}`);
  },
};

async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  const db = await freshPostgres(baseConfig());
  dropDatabase = db.drop;
  const config = baseConfig({ DATABASE_URL: db.url, LOG_LEVEL: "silent" });
  boss = createBoss(config, "worker");
  await boss.start();
  await createQueues(boss, [echo, flaky, scheduled] as JobDefinition[]);
  await workQueues(boss, [echo, flaky] as JobDefinition[], createLogger(config));
});

afterAll(async () => {
  await boss?.stop({ graceful: false });
  await dropDatabase?.();
});

describe("worker", () => {
  it("schedules the jobs that declare a cron expression", async () => {
    const schedules = await boss.getSchedules();
    expect(schedules.map((s) => [s.name, s.cron])).toEqual([["test.scheduled", "*/5 * * * *"]]);
  });

  it("runs the handler of each job sent", async () => {
    await boss.send("test.echo", { word: "one" });
    await boss.send("test.echo", { word: "two" });
    await until(() => handled.length === 2);
    expect(handled.sort()).toEqual(["one", "two"]);
  });

  it("retries a failing job, then moves it to its dead-letter queue with its data", async () => {
    await boss.send("test.flaky", { key: "k1" });
    const dead: { data: unknown }[] = [];
    await until(async () => {
      dead.push(...(await boss.fetch(deadLetterQueue("test.flaky"))));
      return dead.length > 0;
    });
    expect(attempts.get("k1")).toBe(3); // the first try and two retries
    expect(dead[0]?.data).toEqual({ key: "k1" });
  });
});
