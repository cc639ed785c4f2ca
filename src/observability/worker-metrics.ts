// What a worker does, for Prometheus: pipeline runs and their rows, webhook tries and their
// outcomes, credits charged, and the depth of every job queue (dead-letter queues included). The worker serves
// them on its own port (WORKER_METRICS_PORT, `serveWorkerMetrics`); ops/ holds the dashboard and
// alert rules built on these names.
//
// Runs and rows are counted from the events the runner publishes (pipeline.run.updated carries
// the counters about once a second), so the runner knows nothing of metrics; webhook tries are
// told by the dispatcher through `DeliveryMeter`, since its events are per batch, not per try.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { DomainEvent, EventSink, PipelineRunUpdated } from "../events/events.js";

/** A try's outcome: SUCCEEDED, FAILED (another try is scheduled) or DEAD (no more tries). */
export type TryOutcome = "SUCCEEDED" | "FAILED" | "DEAD";

/** Told of every delivery try once it is recorded. */
export interface DeliveryMeter {
  tried(kind: string, outcome: TryOutcome, durationMs: number): void;
}

/** One queue's jobs by state, as pg-boss counts them. */
export interface QueueDepth {
  name: string;
  queuedCount: number;
  activeCount: number;
  deferredCount: number;
  failedCount: number;
}

const ROW_KINDS = ["read", "written", "rejected"] as const;
const ENDED = new Set<PipelineRunUpdated["data"]["status"]>(["SUCCEEDED", "FAILED", "CANCELLED"]);

interface Running {
  startedAt: number;
  rows: Record<(typeof ROW_KINDS)[number], number>;
}

/** One registry per instance, so several services in one process (tests) never share counters. */
export class WorkerMetrics implements EventSink, DeliveryMeter {
  readonly name = "worker-metrics";
  readonly registry = new Registry();
  readonly #running = new Map<string, Running>();
  #queues: (() => Promise<QueueDepth[]>) | null = null;

  readonly runsStarted = new Counter({
    name: "datahus_pipeline_run_attempts_total",
    help: "Pipeline run attempts this worker started (a retried run counts once per attempt)",
    registers: [this.registry],
  });

  readonly runsEnded = new Counter({
    name: "datahus_pipeline_runs_total",
    help: "Pipeline run attempts that ended on this worker, by status (QUEUED: failed, to be retried)",
    labelNames: ["status"] as const,
    registers: [this.registry],
  });

  readonly runDuration = new Histogram({
    name: "datahus_pipeline_run_duration_seconds",
    help: "Pipeline run attempt duration, from start to its final status",
    labelNames: ["status"] as const,
    buckets: [0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [this.registry],
  });

  readonly rows = new Counter({
    name: "datahus_pipeline_rows_total",
    help: "Rows pipeline runs read, wrote and rejected (quarantined), counted as the runs go",
    labelNames: ["kind"] as const,
    registers: [this.registry],
  });

  readonly runsRunning: Gauge;

  readonly deliveryTries = new Counter({
    name: "datahus_delivery_attempts_total",
    help: "Delivery tries by kind and outcome (DEAD: the last try failed and the event was given up)",
    labelNames: ["kind", "outcome"] as const,
    registers: [this.registry],
  });

  readonly deliveryDuration = new Histogram({
    name: "datahus_delivery_attempt_duration_seconds",
    help: "Time a delivery try took, by kind",
    labelNames: ["kind"] as const,
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  /** Credits charged by reads and drops, also registered on the API's /metrics (`shared`). */
  readonly creditsCharged = new Counter({
    name: "datahus_credits_charged_total",
    help: "Credits charged for reads, exports and file drops, by operation",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });

  readonly recordsCharged = new Counter({
    name: "datahus_records_served_total",
    help: "Records served by metered operations (reads, exports, drops), by operation",
    labelNames: ["operation"] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "datahus_worker_" });
    const running = this.#running;
    this.runsRunning = new Gauge({
      name: "datahus_pipeline_runs_running",
      help: "Pipeline runs going on this worker",
      registers: [this.registry],
      collect() {
        this.set(running.size);
      },
    });
    const queues = () => this.#queues;
    new Gauge({
      name: "datahus_queue_jobs",
      help: "Jobs per pg-boss queue and state (queues ending in .dead hold dead letters)",
      labelNames: ["queue", "state"] as const,
      registers: [this.registry],
      async collect() {
        const read = queues();
        if (!read) return;
        this.reset();
        for (const q of await read().catch(() => [])) {
          this.set({ queue: q.name, state: "queued" }, q.queuedCount);
          this.set({ queue: q.name, state: "active" }, q.activeCount);
          this.set({ queue: q.name, state: "deferred" }, q.deferredCount);
          this.set({ queue: q.name, state: "failed" }, q.failedCount);
        }
      },
    });
  }

  /** Where queue depths come from (pg-boss's getQueues); read on each scrape. */
  watchQueues(read: () => Promise<QueueDepth[]>): void {
    this.#queues = read;
  }

  async handle(event: DomainEvent): Promise<void> {
    if (event.type === "pipeline.run.updated") this.runUpdated(event.data);
  }

  /** The usage recorder's hook: what each metered operation served and charged. */
  used(operation: string, records: number, credits: bigint | number): void {
    this.recordsCharged.inc({ operation }, records);
    this.creditsCharged.inc({ operation }, Number(credits));
  }

  /** Series the API's /metrics shows too: reads are charged there, drops on workers. */
  shared() {
    return [this.creditsCharged, this.recordsCharged];
  }

  tried(kind: string, outcome: TryOutcome, durationMs: number): void {
    this.deliveryTries.inc({ kind, outcome });
    this.deliveryDuration.observe({ kind }, durationMs / 1000);
  }

  private runUpdated(data: PipelineRunUpdated["data"]): void {
    const counts = { read: data.rowsRead, written: data.rowsWritten, rejected: data.rowsRejected };
    let run = this.#running.get(data.runId);
    if (data.status === "RUNNING" && (!run || counts.read < run.rows.read)) {
      // A new attempt (a retry starts its counters again from zero).
      run = { startedAt: performance.now(), rows: { read: 0, written: 0, rejected: 0 } };
      this.#running.set(data.runId, run);
      this.runsStarted.inc();
    }
    if (!run) return;
    for (const kind of ROW_KINDS) {
      const delta = counts[kind] - run.rows[kind];
      if (delta > 0) this.rows.inc({ kind }, delta);
      run.rows[kind] = Math.max(run.rows[kind], counts[kind]);
    }
    if (data.status === "QUEUED" || ENDED.has(data.status)) {
      this.#running.delete(data.runId);
      this.runsEnded.inc({ status: data.status });
      this.runDuration.observe({ status: data.status }, (performance.now() - run.startedAt) / 1000);
    }
  }
}

/** Serves GET /metrics on host:port until closed; resolves to its base URL (port 0: any free). */
export async function serveWorkerMetrics(
  metrics: WorkerMetrics,
  host: string,
  port: number,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found: GET /metrics\n");
      return;
    }
    metrics.registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": metrics.registry.contentType }).end(text),
      () => res.writeHead(500, { "content-type": "text/plain" }).end("metrics unavailable\n"),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === "IPv6" ? `[${address.address}]` : address.address;
  return { url: `http://${shown}:${address.port}`, server };
}
