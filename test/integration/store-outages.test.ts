// Store outages under load, on private PostgreSQL, Redis and ClickHouse servers (the shared ones
// serve everyone else and are never stopped): ClickHouse stopped, then Redis restarted, then
// PostgreSQL restarted, while a second process keeps reading. Every answer during each outage is
// a success or 503 SERVICE_UNAVAILABLE, /ready names the store that is down, everything
// recovers without a restart, and the ledger sums to the balance with no hold left.
import { spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, expect, it } from "vitest";
import { inject } from "vitest";
import { createPrisma } from "../../src/db/prisma.js";
import { migratePostgres } from "../../src/db/postgres-migrate.js";
import { seedPlans } from "../../src/db/seed-plans.js";
import { createBoss } from "../../src/jobs/boss.js";
import { ref } from "../../src/records/read.service.js";
import { writeRecords } from "../../src/records/records.writer.js";
import {
  CreateDatasetDocument,
  PublishDatasetDocument,
  SetAccountPlanDocument,
  TopUpCreditsDocument,
} from "../generated/graphql.js";
import { baseConfig, withDatabase } from "../support/databases.js";
import {
  privateClickHouse,
  privatePostgres,
  privateRedis,
  type PrivateServer,
} from "../support/private-stores.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

interface Answer {
  t: number;
  path: string;
  status: number;
  code: string | null;
}

let pg: PrivateServer;
let redis: PrivateServer;
let clickhouse: PrivateServer;
let stack: TestStack;
let buyer: TestAccount;
let load: ChildProcess;
const answers: Answer[] = [];

beforeAll(async () => {
  [pg, redis, clickhouse] = await Promise.all([privatePostgres(), privateRedis(), privateClickHouse()]);
  // The template database test stacks clone, made on the private server as global-setup does.
  const template = withDatabase(pg.url, inject("templateDatabase"));
  const { onServer } = await import("../support/databases.js");
  await onServer(pg.url, [`CREATE DATABASE "${inject("templateDatabase")}"`]);
  await migratePostgres(template);
  const prisma = createPrisma(template, 1);
  await seedPlans(prisma);
  await prisma.$disconnect();
  const boss = createBoss({ ...baseConfig(), DATABASE_URL: template }, "api");
  await boss.start();
  await boss.stop({ graceful: false, timeout: 1_000 });

  stack = await startStack({ DATABASE_URL: pg.url, REDIS_URL: redis.url, CLICKHOUSE_URL: clickhouse.url });
  const admin = await stack.admin();
  const publisher = await stack.signup("Outage publisher", "PUBLISHER");
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug: "outage_sales",
        title: "Outage sales",
        category: "retail",
        access: "METERED",
        pricePer100Records: 1,
        keyColumns: ["id"],
        columns: [{ name: "id", type: "INT64", nullable: false }],
      },
    },
    publisher.headers,
  );
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug: "outage_sales" } });
  const rows = Array.from({ length: 50 }, (_, i) => ({ id: i + 1 }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, ref(row), rows, {
    version: 1,
    runId: "seed",
  });
  await stack.graphql(PublishDatasetDocument, { id: created.data!.createDataset.id }, publisher.headers);
  buyer = await stack.signup("Outage buyer");
  await stack.graphql(
    SetAccountPlanDocument,
    { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 1_000_000 },
    admin.headers,
  );
  await stack.graphql(
    TopUpCreditsDocument,
    { accountId: buyer.accountId, amount: 1_000_000, idempotencyKey: "outage-top-up" },
    admin.headers,
  );

  load = spawn(
    process.execPath,
    [
      new URL("../support/load-client.mjs", import.meta.url).pathname,
      stack.url,
      JSON.stringify(buyer.headers),
      "outage_sales",
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  createInterface({ input: load.stdout! }).on("line", (line) => answers.push(JSON.parse(line) as Answer));
}, 180_000);

afterAll(async () => {
  load?.kill("SIGTERM");
  await stack?.close().catch(() => {});
  await Promise.allSettled([pg?.close(), redis?.close(), clickhouse?.close()]);
}, 120_000);

const since = (t: number) => answers.filter((a) => a.t >= t);
const wrong = (list: Answer[]) =>
  list.filter((a) => !(a.status === 200 || (a.status === 503 && a.code === "SERVICE_UNAVAILABLE")));

async function ready(): Promise<{ status: number; failed: string[] }> {
  const response = await fetch(`${stack.url}/ready`);
  const body = (await response.json()) as { failed: string[] };
  return { status: response.status, failed: body.failed };
}

/** Runs an outage: the store stopped, answers collected for a while, the store started again. */
async function outage(store: string, server: PrivateServer, downMs: number) {
  const started = Date.now();
  await server.stop();
  const report = await until(`/ready to name ${store}`, async () => {
    const r = await ready();
    return r.status === 503 && r.failed.includes(store) ? r : null;
  });
  expect(report.failed).toContain(store);
  await new Promise((r) => setTimeout(r, downMs));
  const during = since(started);
  await server.start();
  await until("/ready ok again", async () => (await ready()).status === 200, 60_000);
  const back = Date.now();
  await until(
    "successful answers again",
    () => since(back).filter((a) => a.status === 200).length >= 20,
    60_000,
  );
  return during;
}

it("answers only successes and 503 SERVICE_UNAVAILABLE through each outage, and recovers", async () => {
  await until("load running", () => answers.filter((a) => a.status === 200).length >= 20, 60_000);

  const clickhouseDown = await outage("clickhouse", clickhouse, 3000);
  expect(wrong(clickhouseDown)).toEqual([]);
  expect(clickhouseDown.some((a) => a.status === 503)).toBe(true);

  const redisDown = await outage("redis", redis, 2000);
  expect(wrong(redisDown)).toEqual([]);

  const postgresDown = await outage("postgres", pg, 3000);
  expect(wrong(postgresDown)).toEqual([]);
  expect(postgresDown.some((a) => a.status === 503)).toBe(true);

  load.kill("SIGTERM");
  await new Promise((r) => setTimeout(r, 1000));
  expect(wrong(answers)).toEqual([]);

  // Money: every hold given back once PostgreSQL is back, the ledger summing to the balance.
  const prisma = stack.app.stores.prisma;
  await until(
    "no hold left",
    async () => {
      const open = await prisma.$queryRaw<{ n: bigint }[]>`
      SELECT count(*) AS n FROM credit_transactions r
      WHERE r.account_id = ${buyer.rawAccountId}::uuid AND r.kind = 'RESERVATION'
        AND NOT EXISTS (SELECT 1 FROM credit_transactions x
          WHERE x.account_id = r.account_id AND x.idempotency_key = 'release:' || r.id::text)`;
      return open[0]!.n === 0n;
    },
    30_000,
  );
  const sum = await prisma.creditTransaction.aggregate({
    where: { accountId: buyer.rawAccountId },
    _sum: { amount: true },
  });
  const account = await prisma.account.findUniqueOrThrow({ where: { id: buyer.rawAccountId } });
  expect(sum._sum.amount).toBe(account.creditBalance);
}, 300_000);
