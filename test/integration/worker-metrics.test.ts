// The worker's own /metrics, scraped while a pipeline run goes and a webhook is delivered: the run,
// row and delivery series move. The source is a loopback HTTP API whose second page waits for the
// test, so the scrape in the middle of the run is certain, not a matter of timing.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { PgBoss } from "pg-boss";
import { createBoss } from "../../src/jobs/boss.js";
import { serveWorkerMetricsFor, startJobs } from "../../src/jobs/worker.js";
import { CreateDeliveryDocument } from "../generated/graphql.js";
import { describeOnServer } from "../support/databases.js";
import { ok, publishing } from "../support/publishing.js";
import { startStack, type TestStack } from "../support/stack.js";
import { spawnWorker } from "../support/worker-process.js";

const PAGE_ROWS = 500;

let stack: TestStack;
let boss: PgBoss;
let metrics: { url: string; close(): Promise<void> };
let api: Server;
let apiUrl: string;
let releaseSecondPage: () => void;
const secondPage = new Promise<void>((resolve) => (releaseSecondPage = resolve));
const hooks: string[] = [];

/** Each sample of the exposition text as `name{labels}` → value. */
async function scrape(url: string): Promise<Map<string, number>> {
  const response = await fetch(`${url}/metrics`);
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toMatch(/^text\/plain/);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return samples;
}

/** Scrapes until `ready` holds for a scrape; returns that scrape. */
async function scrapeUntil(ready: (s: Map<string, number>) => boolean, what: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const samples = await scrape(metrics.url);
    if (ready(samples)) return samples;
    if (Date.now() > deadline) throw new Error(`worker metrics never showed ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const rows = (n: number, from: number) =>
  Array.from({ length: n }, (_, i) => ({ id: `r${from + i}`, n: from + i }));

beforeAll(async () => {
  api = createServer((req, res) => {
    const url = new URL(req.url ?? "/", apiUrl);
    if (url.pathname === "/hook") {
      req
        .on("data", () => {})
        .on("end", () => {
          hooks.push(String(req.headers["webhook-id"]));
          res.writeHead(204).end();
        });
      return;
    }
    const page = Number(url.searchParams.get("page") ?? "1");
    const send = (body: unknown) =>
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    if (page === 1) send({ records: rows(PAGE_ROWS, 0), next: `${apiUrl}/items?page=2` });
    // One row of the second page is not a number: it is rejected.
    else
      void secondPage.then(() =>
        send({ records: [...rows(PAGE_ROWS - 1, PAGE_ROWS), { id: "bad", n: "x" }] }),
      );
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  stack = await startStack({ OUTBOUND_ALLOW_CIDRS: "127.0.0.0/8" });
  const { config, services, log } = stack.app;
  boss = await startJobs(config, "worker", services, log, createBoss(config, "worker"));
  const served = await serveWorkerMetricsFor(
    { WORKER_METRICS_PORT: 0, WORKER_METRICS_HOST: "127.0.0.1" },
    services,
    boss,
    log,
  );
  metrics = served!;
}, 60_000);

afterAll(async () => {
  releaseSecondPage();
  await metrics?.close();
  await boss?.stop({ graceful: true, timeout: 5_000 });
  await stack?.close();
  api.closeAllConnections();
  await new Promise((resolve) => api.close(resolve));
});

describe("the worker's /metrics", () => {
  it("serves only GET /metrics, as Prometheus text", async () => {
    expect((await fetch(`${metrics.url}/`)).status).toBe(404);
    expect((await fetch(`${metrics.url}/metrics`, { method: "POST" })).status).toBe(404);
    const samples = await scrape(metrics.url);
    expect(samples.get("datahus_pipeline_runs_running")).toBe(0);
    expect([...samples.keys()].some((k) => k.startsWith("datahus_worker_process_cpu"))).toBe(true);
  });

  it("shows a run, its rows and its webhook moving while they happen", async () => {
    const publisher = await stack.signup("Metered publisher", "PUBLISHER");
    const journey = publishing(stack, publisher);
    const ds = await journey.dataset([
      { name: "id", type: "STRING", nullable: false },
      { name: "n", type: "INT32", nullable: true },
    ]);
    const source = await journey.source("HTTP", {
      url: `${apiUrl}/items?page=1`,
      recordsPath: "records",
      pagination: { type: "nextLink", responsePath: "next" },
    });
    const pipeline = await journey.pipeline(source, ds.id, "FULL_REFRESH");
    ok(
      await stack.graphql(
        CreateDeliveryDocument,
        {
          input: {
            datasetId: ds.id,
            kind: "WEBHOOK",
            config: { url: `${apiUrl}/hook` },
            eventTypes: ["pipeline.run.succeeded"],
          },
        },
        publisher.headers,
      ),
    );
    const before = await scrape(metrics.url);
    const counter = (s: Map<string, number>, key: string) => s.get(key) ?? 0;
    const read = 'datahus_pipeline_rows_total{kind="read"}';
    const written = 'datahus_pipeline_rows_total{kind="written"}';
    const rejected = 'datahus_pipeline_rows_total{kind="rejected"}';
    const succeeded = 'datahus_pipeline_runs_total{status="SUCCEEDED"}';
    const delivered = 'datahus_delivery_attempts_total{kind="WEBHOOK",outcome="SUCCEEDED"}';

    const runId = await journey.run(pipeline);
    // Mid-run: the first page is read, the second waits for us.
    const during = await scrapeUntil(
      (s) => counter(s, read) - counter(before, read) >= PAGE_ROWS,
      "the first page's rows",
    );
    expect(during.get("datahus_pipeline_runs_running")).toBe(1);
    expect(counter(during, "datahus_pipeline_run_attempts_total")).toBe(
      counter(before, "datahus_pipeline_run_attempts_total") + 1,
    );
    expect(counter(during, succeeded)).toBe(counter(before, succeeded));

    releaseSecondPage();
    const run = await journey.finished(runId);
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 2 * PAGE_ROWS, rowsRejected: 1 });
    const after = await scrapeUntil(
      (s) => counter(s, delivered) > counter(before, delivered),
      "the webhook try",
    );
    expect(hooks).toHaveLength(1);
    expect(counter(after, read) - counter(before, read)).toBe(2 * PAGE_ROWS);
    expect(counter(after, written) - counter(before, written)).toBe(run.rowsWritten);
    expect(counter(after, rejected) - counter(before, rejected)).toBe(1);
    expect(counter(after, succeeded)).toBe(counter(before, succeeded) + 1);
    expect(after.get("datahus_pipeline_runs_running")).toBe(0);
    expect(counter(after, 'datahus_pipeline_run_duration_seconds_count{status="SUCCEEDED"}')).toBe(
      counter(before, 'datahus_pipeline_run_duration_seconds_count{status="SUCCEEDED"}') + 1,
    );
    expect(counter(after, 'datahus_delivery_attempt_duration_seconds_count{kind="WEBHOOK"}')).toBeGreaterThan(
      0,
    );
    // Reads are counted where they are served: the API's /metrics (drops: the worker's).
    const read10 = await fetch(`${stack.url}/api/v1/datasets/${ds.slug}/records?limit=10`, {
      headers: publisher.headers,
    });
    expect(read10.status).toBe(200);
    const api = await scrape(stack.url);
    expect(api.get('datahus_records_served_total{operation="records"}')).toBe(10);
    expect(api.has('datahus_credits_charged_total{operation="records"}')).toBe(true);
    // Queue depths come from pg-boss, dead-letter queues included.
    expect(after.has('datahus_queue_jobs{queue="pipelines.run",state="queued"}')).toBe(true);
    // Webhooks' first tries are claimed from a table of their own: its depth beside them.
    expect(after.get('datahus_queue_jobs{queue="deliveries.webhook.first-tries",state="queued"}')).toBe(0);
    expect([...after.keys()].some((k) => /datahus_queue_jobs\{queue="[^"]+\.dead"/.test(k))).toBe(true);
  }, 60_000);
});

describeOnServer("`datahus worker` with WORKER_METRICS_PORT", () => {
  it("serves the same series on its own port", async () => {
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as AddressInfo;
        probe.close(() => resolve(port));
      });
    });
    const worker = spawnWorker(stack, { WORKER_METRICS_PORT: String(port) });
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 30_000;
      let text = "";
      while (!text) {
        text = await fetch(`${url}/metrics`).then(
          (r) => r.text(),
          () => "",
        );
        if (!text && Date.now() > deadline) throw new Error("the worker never served /metrics");
        if (!text) await new Promise((r) => setTimeout(r, 200));
      }
      for (const name of [
        "datahus_pipeline_rows_total",
        "datahus_delivery_attempts_total",
        "datahus_queue_jobs",
      ]) {
        expect(text).toContain(`# TYPE ${name}`);
      }
      expect(text).toMatch(/datahus_queue_jobs\{queue="deliveries\.webhook",state="queued"\}/);
    } finally {
      worker.kill("SIGTERM");
      await new Promise((resolve) => worker.once("exit", resolve));
    }
  }, 60_000);
});
