// Webhook delivery throughput and delay: 10,000 dataset.updated events published on the app's
// event bus, each stored and its first try queued for one webhook, sent by the in-process worker
// (or, with BENCH_WEBHOOK_WORKER=process, a `datahus worker` process of its own) to a loopback receiver, signed and checked there with the reference `standardwebhooks`
// implementation. Prints events/s accepted by the bus, deliveries/s end to end, and the delay from
// publishing an event to the receiver having it (p50, p95, p99, max), and the CPU each process
// (this one, the worker, PostgreSQL's backends) spent per delivery. Asserts only that every
// event arrived, exactly once by webhook-id, with a valid signature. See bench/README.md.
import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import { newEvent, type DatasetUpdated } from "../src/events/events.js";
import { encodeGlobalId } from "../src/graphql/relay.js";
import { CreateDeliveryDocument } from "../test/generated/graphql.js";
import { startStack, type TestStack } from "../test/support/stack.js";
import { cpuMs, spawnWorker } from "../test/support/worker-process.js";
import { ms, ok, quantile, table } from "./support/measure.js";

const EVENTS = Number(process.env.BENCH_WEBHOOK_EVENTS ?? 10_000);
const CONCURRENCY = process.env.BENCH_WEBHOOK_CONCURRENCY ?? "16";
/** Producers publishing at once, as several pipeline runs finishing together would. */
const PUBLISHERS = Number(process.env.BENCH_WEBHOOK_PUBLISHERS ?? 8);
/**
 * The worker in a process of its own, as deployed (a built `dist/`; bench.sh builds it). The
 * embedded engine belongs to one process, so there the worker stays in this one.
 */
const WORKER_PROCESS =
  process.env.BENCH_WEBHOOK_WORKER === "process" && !process.env.CLICKHOUSE_URL?.startsWith("embedded:");
/** NODE_OPTIONS for the worker process (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`). */
const WORKER_NODE_OPTIONS = process.env.BENCH_WORKER_NODE_OPTIONS;
const DEADLINE_MS = 8 * 60_000;
/** Then events one at a time, 50 ms apart: the delay of an idle queue (polling, no backlog). */
const TRICKLE = 100;
const TRICKLE_GAP_MS = 50;

let stack: TestStack;
let worker: ChildProcess | undefined;
let receiver: Server;
let url = "";
let verifier: Webhook;
/** performance.now() when each event was handed to the bus, and when the receiver had it. */
const published = new Map<string, number>();
const received = new Map<string, number>();
let duplicates = 0;
let invalid = 0;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      const id = String(req.headers["webhook-id"]);
      try {
        verifier.verify(Buffer.concat(chunks).toString("utf8"), {
          "webhook-id": id,
          "webhook-timestamp": String(req.headers["webhook-timestamp"]),
          "webhook-signature": String(req.headers["webhook-signature"]),
        });
      } catch {
        invalid++;
      }
      if (received.has(id)) duplicates++;
      else received.set(id, at);
      res.end("ok");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  stack = await startStack(
    {
      LOG_LEVEL: "warn",
      OUTBOUND_ALLOW_CIDRS: "127.0.0.0/8",
      WEBHOOK_CONCURRENCY: CONCURRENCY,
    },
    { worker: !WORKER_PROCESS },
  );
  if (WORKER_PROCESS) worker = spawnWorker(stack, { WEBHOOK_CONCURRENCY: CONCURRENCY }, WORKER_NODE_OPTIONS);
});

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill("SIGTERM");
    await once(worker, "exit");
  }
  await stack?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

it(`delivers ${EVENTS} webhook events to a loopback receiver`, async () => {
  const prisma = stack.app.stores.prisma;
  const publisher = await stack.signup("Bench publisher", "PUBLISHER");
  const buyer = await stack.signup("Bench buyer", "BUYER");
  const dataset = await prisma.dataset.create({
    data: {
      accountId: publisher.rawAccountId,
      slug: "bench_hooks",
      title: "Bench hooks",
      category: "bench",
      columns: [{ name: "id", type: "STRING", nullable: false }],
      keyColumns: ["id"],
      status: "PUBLISHED",
      access: "OPEN",
      tableName: "bench_hooks",
    },
  });
  const created = ok(
    await stack.graphql(
      CreateDeliveryDocument,
      { input: { datasetId: encodeGlobalId("Dataset", dataset.id), kind: "WEBHOOK", config: { url } } },
      buyer.headers,
    ),
  ).createDelivery;
  verifier = new Webhook(created.signingSecret!);
  const event = (version: number) =>
    newEvent<DatasetUpdated>("dataset.updated", {
      datasetId: dataset.id,
      accountId: publisher.rawAccountId,
      version,
      rowCount: version,
      changedRows: 1,
      cause: "PUSH",
      runId: null,
    });
  if (worker) {
    // One event through first, so that the worker process has started before the clock does.
    const first = event(0);
    await stack.app.services.events.publish(first);
    while (!received.has(first.id)) await new Promise((r) => setTimeout(r, 50));
    received.clear();
  }

  const postgresBefore = await postgresCpu();
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const workerCpuBefore = worker ? cpuMs(worker.pid!) : 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: PUBLISHERS }, async () => {
      for (let i = next++; i < EVENTS; i = next++) {
        const e = event(i + 1);
        published.set(e.id, performance.now());
        await stack.app.services.events.publish(e);
      }
    }),
  );
  const publishedIn = performance.now() - started;

  const deadline = Date.now() + DEADLINE_MS;
  while (received.size < EVENTS && Date.now() < deadline) {
    if (process.env.BENCH_DEBUG) console.log("received", received.size, "published", published.size);
    await new Promise((r) => setTimeout(r, process.env.BENCH_DEBUG ? 2000 : 50));
  }
  const deliveredIn = Math.max(...received.values()) - started;
  const cpu = process.cpuUsage(cpuBefore);
  const workerCpu = worker ? cpuMs(worker.pid!) - workerCpuBefore : 0;
  const postgresAfter = await postgresCpu();
  let postgres = 0;
  for (const [pid, ms] of postgresAfter) postgres += ms - (postgresBefore.get(pid) ?? 0);

  expect(received.size).toBe(EVENTS);
  expect([...received.keys()].every((id) => published.has(id))).toBe(true);
  expect(duplicates).toBe(0);
  expect(invalid).toBe(0);

  const delays = [...received].map(([id, at]) => at - published.get(id)!).sort((a, b) => a - b);

  const trickle: string[] = [];
  for (let i = 0; i < TRICKLE; i++) {
    const e = event(EVENTS + i + 1);
    trickle.push(e.id);
    published.set(e.id, performance.now());
    await stack.app.services.events.publish(e);
    await new Promise((r) => setTimeout(r, TRICKLE_GAP_MS));
  }
  while (received.size < EVENTS + TRICKLE && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  expect(received.size).toBe(EVENTS + TRICKLE);
  expect(duplicates).toBe(0);
  expect(invalid).toBe(0);
  // A receipt comes before its attempt is recorded: wait (bounded) for the last records.
  const succeeded = async () => prisma.deliveryAttempt.count({ where: { status: "SUCCEEDED" } });
  const attempts = EVENTS + TRICKLE + (worker ? 1 : 0);
  while ((await succeeded()) < attempts && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  expect(await succeeded()).toBe(attempts);
  const idle = trickle.map((id) => received.get(id)! - published.get(id)!).sort((a, b) => a - b);
  console.log(
    [
      "",
      `Webhooks: ${EVENTS} dataset.updated events to one loopback webhook; ${PUBLISHERS} concurrent producers;`,
      `worker concurrency ${CONCURRENCY}; ${cpus().length} CPUs (${cpus()[0]?.model ?? "?"}).`,
      worker
        ? "API, receiver and producers in one Node process, the worker in another."
        : "API, worker, receiver and producers in one Node process.",
      "",
      table(
        ["figure", "unit", "value"],
        [
          [
            "events accepted by the bus (stored + queued)",
            "events/s",
            (EVENTS / (publishedIn / 1000)).toFixed(0),
          ],
          [
            "deliveries end to end (first publish → last receipt)",
            "deliveries/s",
            (EVENTS / (deliveredIn / 1000)).toFixed(0),
          ],
          [
            "CPU of this process until the last receipt, per delivery",
            "ms",
            ms((cpu.user + cpu.system) / 1000 / EVENTS),
          ],
          ...(worker ? [["CPU of the worker process, per delivery", "ms", ms(workerCpu / EVENTS)]] : []),
          ["CPU of PostgreSQL's backends on the bench database, per delivery", "ms", ms(postgres / EVENTS)],
          [
            "CPU of all of them, per delivery (2,000/s needs under ~1 ms on 2 cores)",
            "ms",
            ms(((cpu.user + cpu.system) / 1000 + workerCpu + postgres) / EVENTS),
          ],
          ["delay publish → receipt p50", "ms", ms(quantile(delays, 0.5))],
          ["delay publish → receipt p95", "ms", ms(quantile(delays, 0.95))],
          ["delay publish → receipt p99", "ms", ms(quantile(delays, 0.99))],
          ["delay publish → receipt max", "ms", ms(delays.at(-1)!)],
          [
            `idle queue: ${TRICKLE} events ${TRICKLE_GAP_MS} ms apart, delay p50`,
            "ms",
            ms(quantile(idle, 0.5)),
          ],
          ["idle queue: delay p99", "ms", ms(quantile(idle, 0.99))],
        ],
      ),
      "",
    ].join("\n"),
  );
});

/**
 * CPU so far of each PostgreSQL backend connected to the bench's database (API, worker and
 * pg-boss share it), by process id: the pools keep their connections through the burst, and one
 * opened during it counts whole. PostgreSQL is shared with other databases: only these count.
 */
async function postgresCpu(): Promise<Map<number, number>> {
  const rows = await stack.app.stores.prisma.$queryRaw<{ pid: number }[]>`
    SELECT pid FROM pg_stat_activity WHERE datname = current_database()`;
  const cpu = new Map<number, number>();
  for (const { pid } of rows) {
    try {
      cpu.set(pid, cpuMs(pid));
    } catch {
      // Gone between the query and the read.
    }
  }
  return cpu;
}
