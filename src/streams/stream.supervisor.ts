// Runs the started STREAM pipelines in a worker process. Every few seconds it compares the
// pipelines that should be consuming (enabled, STREAM source, not deleted) with those it runs:
// it takes a pipeline's lock (a PostgreSQL advisory lock on a connection of its own, freed when
// the process dies) before starting its engine, so one worker consumes a pipeline at a time and
// another takes over when that worker is killed, and stops the engines of pipelines stopped,
// deleted or changed. Once a second it saves each engine's counters on its run and the broker's
// lag, throughput and last-message time on the source (Source.metrics, /metrics read them).
import type { Column } from "../catalog/columns.js";
import type { Config } from "../config.js";
import type { ClickHouse } from "../db/clickhouse.js";
import type { EventBus } from "../events/events.js";
import type { Prisma, PrismaClient } from "../generated/prisma/client.js";
import type { Logger } from "../observability/logger.js";
import { PipelineLock } from "../pipelines/pipeline.runner.js";
import { redact, type SourceService } from "../sources/source.service.js";
import { MessageBuffer } from "./adapters/adapter.js";
import { adapterFor } from "./adapters/registry.js";
import { DATASET_INTERVAL_MS, recordAppended } from "./dataset-progress.js";
import { parseStreamConfig } from "./stream.config.js";
import { BatchWriter, StreamEngine } from "./stream.engine.js";
import { STREAM_STATE_KEY, type StreamState } from "./stream.state.js";

/** Counters and metrics are saved this often. */
const SAVE_INTERVAL_MS = 1000;
/** Throughput is the average over this many saves. */
const RATE_WINDOW = 5;

type StreamPipeline = Prisma.PipelineGetPayload<{ include: { source: true; dataset: true } }>;

interface Session {
  pipeline: StreamPipeline;
  /** What the session was started from: a change to either restarts it. */
  version: string;
  lock: PipelineLock;
  engine: StreamEngine;
  runId: string;
  samples: { at: number; stored: number }[];
  datasetSavedAt: number;
  writtenAtDatasetSave: number;
  /** The engine's counters as last added to the run. */
  saved: { read: number; written: number; rejected: number };
}

export type SupervisorConfig = Pick<
  Config,
  "CLICKHOUSE_DATABASE" | "DATABASE_URL" | "STREAM_POLL_INTERVAL_MS"
>;

export class StreamSupervisor {
  private readonly sessions = new Map<string, Session>();
  /** Pipelines whose engine failed to start, and when to try again. */
  private readonly backoff = new Map<string, { until: number; delay: number }>();
  private pollTimer: NodeJS.Timeout | null = null;
  private saveTimer: NodeJS.Timeout | null = null;
  private reconciling: Promise<void> | null = null;
  private saving: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly config: SupervisorConfig,
    private readonly sources: SourceService,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  start(): void {
    const reconcile = () => {
      if (this.reconciling || this.stopped) return;
      this.reconciling = this.reconcile()
        .catch((err: unknown) => this.log.warn({ err }, "stream supervisor pass failed"))
        .finally(() => (this.reconciling = null));
    };
    reconcile();
    this.pollTimer = setInterval(reconcile, this.config.STREAM_POLL_INTERVAL_MS);
    this.saveTimer = setInterval(() => {
      if (this.saving || this.stopped) return;
      this.saving = this.saveAll()
        .catch((err: unknown) => this.log.warn({ err }, "could not save stream metrics"))
        .finally(() => (this.saving = null));
    }, SAVE_INTERVAL_MS);
  }

  /** Stops every engine (each finishes its batch), saves their counters and frees the locks. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.saveTimer) clearInterval(this.saveTimer);
    await this.reconciling;
    await this.saving;
    await Promise.all([...this.sessions.keys()].map((id) => this.end(id, null)));
  }

  /** Pipelines this process consumes now (tests, logs). */
  running(): string[] {
    return [...this.sessions.keys()];
  }

  private async reconcile(): Promise<void> {
    const wanted = await this.prisma.pipeline.findMany({
      where: { enabled: true, source: { type: "STREAM", deletedAt: null } },
      include: { source: true, dataset: true },
    });
    const byId = new Map(wanted.map((p) => [p.id, p]));
    for (const [id, session] of this.sessions) {
      const now = byId.get(id);
      if (!now) await this.end(id, "stopped");
      else if (versionOf(now) !== session.version) await this.end(id, "restarting after a change");
      else if (session.engine.failed) await this.end(id, `failed: ${session.engine.failed.message}`);
    }
    for (const pipeline of wanted) {
      if (this.stopped) return;
      if (this.sessions.has(pipeline.id)) continue;
      const wait = this.backoff.get(pipeline.id);
      if (wait && wait.until > Date.now()) continue;
      await this.begin(pipeline);
    }
  }

  private async begin(pipeline: StreamPipeline): Promise<void> {
    const lock = await PipelineLock.acquire(this.config.DATABASE_URL, pipeline.id);
    if (!lock) return; // another worker consumes it
    let runId: string | null = null;
    try {
      const config = parseStreamConfig(pipeline.source.config);
      const secrets = this.sources.secretsOf(pipeline.source);
      runId = await this.currentRun(pipeline);
      const { dataset } = pipeline;
      const writer = new BatchWriter(this.clickhouse, {
        database: this.config.CLICKHOUSE_DATABASE,
        dataset: {
          id: dataset.id,
          tableName: dataset.tableName,
          columns: dataset.columns as unknown as Column[],
          keyColumns: dataset.keyColumns,
        },
        steps: pipeline.steps,
        runId,
        messageIdField: config.messageIdField,
      });
      const capacity = config.batchSize * 2;
      const log = this.log.child({ pipelineId: pipeline.id, broker: config.broker });
      const engine = new StreamEngine(
        adapterFor(config, secrets, capacity),
        new MessageBuffer(capacity),
        writer,
        {
          batchSize: config.batchSize,
          batchMs: config.batchMs,
          log,
        },
      );
      await engine.start();
      this.sessions.set(pipeline.id, {
        pipeline,
        version: versionOf(pipeline),
        lock,
        engine,
        runId,
        samples: [],
        datasetSavedAt: Date.now(),
        writtenAtDatasetSave: 0,
        saved: { read: 0, written: 0, rejected: 0 },
      });
      this.backoff.delete(pipeline.id);
      await this.note(pipeline.id, runId, "INFO", `Consuming ${config.broker}`, { broker: config.broker });
      log.info({ runId }, "stream consumer started");
    } catch (error) {
      await lock.release();
      const last = this.backoff.get(pipeline.id)?.delay ?? 1000;
      const delay = Math.min(60_000, last * 2);
      this.backoff.set(pipeline.id, { until: Date.now() + delay, delay });
      const message = error instanceof Error ? error.message : String(error);
      const safe = redact(message, this.sources.secretsOf(pipeline.source));
      this.log.warn({ pipelineId: pipeline.id, error: safe }, "stream consumer could not start");
      if (runId) {
        await this.note(
          pipeline.id,
          runId,
          "ERROR",
          `Could not consume the stream (retrying in ${delay / 1000} s): ${safe}`,
        );
      }
    }
  }

  /**
   * The pipeline's STREAM run: the one a killed worker left RUNNING (its counters go on), or a
   * new one.
   */
  private async currentRun(pipeline: StreamPipeline): Promise<string> {
    const running = await this.prisma.pipelineRun.findFirst({
      where: { pipelineId: pipeline.id, trigger: "STREAM", status: "RUNNING" },
      orderBy: { id: "desc" },
    });
    if (running) return running.id;
    const run = await this.prisma.pipelineRun.create({
      data: {
        pipelineId: pipeline.id,
        accountId: pipeline.accountId,
        trigger: "STREAM",
        status: "RUNNING",
        startedAt: new Date(),
      },
    });
    return run.id;
  }

  /** Stops a session; `reason` null when the worker itself stops (the run stays RUNNING). */
  private async end(pipelineId: string, reason: string | null): Promise<void> {
    const session = this.sessions.get(pipelineId);
    if (!session) return;
    try {
      await session.engine.stop();
      await this.save(session).catch((err: unknown) =>
        this.log.warn({ err }, "could not save stream counters"),
      );
      if (reason !== null) {
        // stopPipeline marked the run CANCELLED already; a failure or change ends it here.
        await this.prisma.pipelineRun.updateMany({
          where: { id: session.runId, status: "RUNNING" },
          data: {
            status: session.engine.failed ? "FAILED" : "SUCCEEDED",
            finishedAt: new Date(),
            error: session.engine.failed ? session.engine.failed.message.slice(0, 2000) : null,
          },
        });
        await this.note(
          pipelineId,
          session.runId,
          session.engine.failed ? "ERROR" : "INFO",
          `Stream consumer ${reason}`,
        );
        await this.saveState(session, null, false);
      }
    } finally {
      this.sessions.delete(pipelineId);
      await session.lock.release();
    }
  }

  private async saveAll(): Promise<void> {
    for (const session of this.sessions.values()) await this.save(session);
  }

  private async save(session: Session): Promise<void> {
    const { engine } = session;
    const c = engine.counters;
    const stored = c.written + c.rejected;
    const now = Date.now();
    session.samples.push({ at: now, stored });
    if (session.samples.length > RATE_WINDOW + 1) session.samples.shift();
    const first = session.samples[0]!;
    const rate = now > first.at ? ((stored - first.stored) * 1000) / (now - first.at) : 0;
    // Added, not set: a run a killed worker left goes on counting from where it was saved.
    const { saved } = session;
    await this.prisma.pipelineRun.updateMany({
      where: { id: session.runId, status: "RUNNING" },
      data: {
        rowsRead: { increment: c.read - saved.read },
        rowsWritten: { increment: c.written - saved.written },
        rowsRejected: { increment: c.rejected - saved.rejected },
      },
    });
    session.saved = { read: c.read, written: c.written, rejected: c.rejected };
    await this.saveState(session, rate, true);
    if (c.written > session.writtenAtDatasetSave && now - session.datasetSavedAt >= DATASET_INTERVAL_MS) {
      const deps = {
        prisma: this.prisma,
        clickhouse: this.clickhouse,
        database: this.config.CLICKHOUSE_DATABASE,
        events: this.events,
      };
      await recordAppended(
        deps,
        session.pipeline.dataset,
        c.written - session.writtenAtDatasetSave,
        session.runId,
      );
      session.writtenAtDatasetSave = c.written;
      session.datasetSavedAt = now;
    }
  }

  private async saveState(session: Session, rate: number | null, consuming: boolean): Promise<void> {
    const { engine, pipeline } = session;
    const state: StreamState = {
      consuming,
      paused: engine.counters.paused,
      lag: consuming ? await engine.lag() : null,
      messagesPerSecond: rate === null ? 0 : Math.round(rate * 10) / 10,
      lastMessageAt: engine.counters.lastMessageAt?.toISOString() ?? null,
      updatedAt: new Date().toISOString(),
      pipelineId: pipeline.id,
    };
    await this.prisma.source.update({
      where: { id: pipeline.sourceId },
      data: { state: { [STREAM_STATE_KEY]: state } as unknown as Prisma.InputJsonObject },
    });
  }

  private async note(
    pipelineId: string,
    runId: string,
    level: "INFO" | "WARN" | "ERROR",
    message: string,
    data?: Record<string, unknown>,
  ): Promise<void> {
    await this.prisma.pipelineLog
      .create({
        data: { runId, pipelineId, level, message, data: data as Prisma.InputJsonValue | undefined },
      })
      .catch((err: unknown) => this.log.warn({ err }, "could not write a pipeline log"));
  }
}

/**
 * What an engine is built from. Not the rows' updatedAt: the supervisor itself updates the
 * source (its metrics) and the dataset (version, row count).
 */
function versionOf(pipeline: StreamPipeline): string {
  const { source, dataset } = pipeline;
  return JSON.stringify([
    pipeline.steps,
    source.config,
    source.secretsEncrypted,
    dataset.tableName,
    dataset.columns,
    dataset.keyColumns,
  ]);
}
