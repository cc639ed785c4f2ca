// Pipelines: a source mapped into a dataset through declarative steps, and their runs. This module
// holds the rules a publisher meets (ownership, steps checked against the dataset, one run at a
// time); the worker side lives in pipeline.runner.ts.
import type { Column } from "../catalog/columns.js";
import type { Config } from "../config.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { ModelReader } from "../db/model-reader.js";
import { AppError, badInput, notFound } from "../errors.js";
import type {
  NewFieldPolicy,
  Pipeline,
  PipelineLog,
  PipelineMode,
  PipelineRun,
  PipelineRunStatus,
  PipelineRunTrigger,
  Prisma,
  PrismaClient,
} from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { JobQueue } from "../jobs/queue.js";
import type { Page, PageArgs, PageLimits } from "../pagination.js";
import { isCronExpression } from "../sources/source.service.js";
import { streamStateOf, type StreamState } from "../streams/stream.state.js";
import { PIPELINE_RUN_QUEUE, PIPELINE_SCHEDULE_QUEUE, type PipelineRunJob } from "./pipeline.queue.js";
import { rejectedRowsPage, type RejectedRow } from "./run-tables.js";
import { compilePipeline } from "./steps/compile.js";
import { DEFAULT_LOAD_SETTINGS, loadSettingsProblems, type LoadSettings } from "./load-rules.js";

export interface PipelineInput {
  sourceId: string;
  datasetId: string;
  name: string;
  steps: unknown;
  mode?: PipelineMode | null;
  schedule?: string | null;
  newFieldPolicy?: NewFieldPolicy | null;
  duplicateKeys?: LoadSettings["duplicateKeys"] | null;
  allowEmptyKeys?: boolean | null;
  rowKeyColumn?: string | null;
  minLiveRowRatio?: number | null;
}

/** Undefined keeps a field; `schedule: null` removes the schedule. */
export interface PipelineUpdate {
  name?: string | null;
  steps?: unknown;
  mode?: PipelineMode | null;
  schedule?: string | null;
  newFieldPolicy?: NewFieldPolicy | null;
  duplicateKeys?: LoadSettings["duplicateKeys"] | null;
  allowEmptyKeys?: boolean | null;
  /** Null or "" removes it. */
  rowKeyColumn?: string | null;
  minLiveRowRatio?: number | null;
}

export interface SourceMetrics {
  pipelines: number;
  runs: number;
  failedRuns: number;
  rowsWritten: bigint;
  rowsRejected: bigint;
  lastSyncAt: Date | null;
  lastStatus: PipelineRunStatus | null;
  lastError: string | null;
  /** STREAM sources: what the consuming worker last reported. */
  stream: StreamState | null;
}

const WRITE = ["PUBLISHER", "pipelines:write"];
export const ACTIVE: PipelineRunStatus[] = ["QUEUED", "RUNNING"];

export class PipelineService {
  readonly pipelines: ModelReader<Pipeline>;
  readonly runs: ModelReader<PipelineRun>;
  readonly logs: ModelReader<PipelineLog>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly config: Pick<Config, "CLICKHOUSE_DATABASE" | "MAX_LIMIT">,
    private readonly jobs: JobQueue,
    limits: PageLimits,
  ) {
    this.pipelines = new ModelReader(prisma.pipeline, "pipeline", limits);
    this.runs = new ModelReader(prisma.pipelineRun, "pipelineRun", limits);
    this.logs = new ModelReader(prisma.pipelineLog, "pipelineLog", limits);
  }

  async create(caller: Caller, input: PipelineInput): Promise<Pipeline> {
    const who = authorize(caller, WRITE);
    const [source, dataset] = await Promise.all([
      this.prisma.source.findUnique({ where: { id: input.sourceId } }),
      this.prisma.dataset.findUnique({ where: { id: input.datasetId } }),
    ]);
    const mine = (accountId: string | undefined) => who.role === "ADMIN" || accountId === who.accountId;
    if (!source || source.deletedAt || !mine(source.accountId)) throw notFound("Source");
    if (!dataset || !mine(dataset.accountId)) throw notFound("Dataset");
    if (source.accountId !== dataset.accountId) {
      throw badInput("The source and the dataset belong to different accounts");
    }
    const appends = source.type === "PUSH" || source.type === "STREAM";
    const mode = input.mode ?? (appends ? "INCREMENTAL" : "FULL_REFRESH");
    const fields = checkPipeline({
      name: input.name,
      steps: input.steps,
      mode,
      schedule: input.schedule ?? null,
      sourceType: source.type,
      dataset,
      load: loadSettings(DEFAULT_LOAD_SETTINGS, input),
    });
    return this.prisma.pipeline.create({
      data: {
        accountId: source.accountId,
        sourceId: source.id,
        datasetId: dataset.id,
        ...fields,
        newFieldPolicy: input.newFieldPolicy ?? "IGNORE",
        // Nothing runs on its own until startPipeline.
        enabled: false,
      },
    });
  }

  async update(caller: Caller, id: string, input: PipelineUpdate): Promise<Pipeline> {
    const pipeline = await this.own(caller, id);
    const [source, dataset] = await Promise.all([
      this.prisma.source.findUniqueOrThrow({ where: { id: pipeline.sourceId } }),
      this.prisma.dataset.findUniqueOrThrow({ where: { id: pipeline.datasetId } }),
    ]);
    const fields = checkPipeline({
      name: input.name ?? pipeline.name,
      steps: input.steps === undefined || input.steps === null ? pipeline.steps : input.steps,
      mode: input.mode ?? pipeline.mode,
      schedule: input.schedule === undefined ? pipeline.schedule : input.schedule,
      sourceType: source.type,
      dataset,
      load: loadSettings(pipeline, { ...input, rowKeyColumn: input.rowKeyColumn ?? undefined }),
    });
    const updated = await this.prisma.pipeline.update({
      where: { id: pipeline.id },
      data: { ...fields, newFieldPolicy: input.newFieldPolicy ?? pipeline.newFieldPolicy },
    });
    if (updated.enabled) await this.syncSchedule(updated);
    return updated;
  }

  /** Deletes the pipeline with its runs and logs; refused while a run is going. */
  async delete(caller: Caller, id: string): Promise<Pipeline> {
    const pipeline = await this.own(caller, id);
    const active = await this.activeRun(pipeline.id);
    if (active) throw runInProgress(active);
    await this.jobs.unschedule(PIPELINE_SCHEDULE_QUEUE, pipeline.id);
    return this.prisma.pipeline.delete({ where: { id: pipeline.id } });
  }

  /** Queues a MANUAL run now; CONFLICT (with the run's id) while another run is queued or going. */
  async run(caller: Caller, id: string): Promise<PipelineRun> {
    const pipeline = await this.own(caller, id);
    if (await this.isStream(pipeline)) {
      throw badInput("A STREAM pipeline is not run: start it (startPipeline) and a worker consumes it");
    }
    const run = await this.queueRun(pipeline, "MANUAL");
    if ("conflict" in run) throw runInProgress(run.conflict);
    return run.run;
  }

  /** Enables the pipeline's cron schedule (required); each tick queues a run unless one is going. */
  async start(caller: Caller, id: string): Promise<Pipeline> {
    const pipeline = await this.own(caller, id);
    // A STREAM pipeline needs no schedule: a worker consumes it from now until stopPipeline.
    if (await this.isStream(pipeline)) {
      return this.prisma.pipeline.update({ where: { id: pipeline.id }, data: { enabled: true } });
    }
    if (!pipeline.schedule)
      throw badInput("Set the pipeline's schedule (a cron expression) before starting it");
    const updated = await this.prisma.pipeline.update({
      where: { id: pipeline.id },
      data: { enabled: true },
    });
    await this.syncSchedule(updated);
    return updated;
  }

  /** Disables the schedule and cancels a queued or running run (the runner stops between batches). */
  async stop(caller: Caller, id: string): Promise<Pipeline> {
    const pipeline = await this.own(caller, id);
    const updated = await this.prisma.pipeline.update({
      where: { id: pipeline.id },
      data: { enabled: false },
    });
    await this.jobs.unschedule(PIPELINE_SCHEDULE_QUEUE, pipeline.id);
    const active = await this.prisma.pipelineRun.findMany({
      where: { pipelineId: pipeline.id, status: { in: ACTIVE } },
    });
    const now = new Date();
    for (const run of active) {
      const cancelled = await this.prisma.pipelineRun.updateMany({
        where: { id: run.id, status: { in: ACTIVE } },
        data: { status: "CANCELLED", finishedAt: now, error: "Cancelled by stopPipeline" },
      });
      if (cancelled.count && run.jobId) await this.jobs.cancel(PIPELINE_RUN_QUEUE, run.jobId).catch(() => {});
    }
    return updated;
  }

  /** Runs every enabled pipeline of a source now; those with a run going are left as they are. */
  async syncSource(caller: Caller, sourceId: string): Promise<PipelineRun[]> {
    const who = authorize(caller, WRITE);
    const source = await this.prisma.source.findUnique({ where: { id: sourceId } });
    if (!source || source.deletedAt || (who.role !== "ADMIN" && source.accountId !== who.accountId)) {
      throw notFound("Source");
    }
    if (source.type === "STREAM") return []; // consumed continuously, never synced
    const pipelines = await this.prisma.pipeline.findMany({
      where: { sourceId, enabled: true },
      orderBy: { id: "asc" },
    });
    const runs: PipelineRun[] = [];
    for (const pipeline of pipelines) {
      const queued = await this.queueRun(pipeline, "MANUAL");
      runs.push("run" in queued ? queued.run : queued.conflict);
    }
    return runs;
  }

  /** The schedule job: a SCHEDULE run, unless the pipeline was stopped or a run is going. */
  async runScheduled(pipelineId: string): Promise<PipelineRun | null> {
    const pipeline = await this.prisma.pipeline.findUnique({ where: { id: pipelineId } });
    if (!pipeline?.enabled) return null;
    const queued = await this.queueRun(pipeline, "SCHEDULE");
    return "run" in queued ? queued.run : null;
  }

  private async isStream(pipeline: Pipeline): Promise<boolean> {
    const source = await this.prisma.source.findUnique({
      where: { id: pipeline.sourceId },
      select: { type: true },
    });
    return source?.type === "STREAM";
  }

  async lastRun(pipelineId: string): Promise<PipelineRun | null> {
    return this.prisma.pipelineRun.findFirst({ where: { pipelineId }, orderBy: { id: "desc" } });
  }

  /** The rows a run rejected, with their reasons (the quarantine in ClickHouse), by origin and row. */
  async rejectedRows(
    run: Pick<PipelineRun, "id" | "pipelineId">,
    args: PageArgs,
  ): Promise<Page<RejectedRow>> {
    const pipeline = await this.prisma.pipeline.findUnique({
      where: { id: run.pipelineId },
      select: { datasetId: true },
    });
    if (!pipeline) return { items: [], cursors: [], hasNextPage: false, hasPreviousPage: false };
    return rejectedRowsPage(
      this.clickhouse,
      this.config.CLICKHOUSE_DATABASE,
      pipeline.datasetId,
      run.id,
      args,
      {
        maxLimit: this.config.MAX_LIMIT,
      },
    );
  }

  async sourceMetrics(sourceId: string): Promise<SourceMetrics> {
    const where = { pipeline: { sourceId } };
    const [pipelines, runs, failedRuns, totals, last, source] = await Promise.all([
      this.prisma.pipeline.count({ where: { sourceId } }),
      this.prisma.pipelineRun.count({ where }),
      this.prisma.pipelineRun.count({ where: { ...where, status: "FAILED" } }),
      this.prisma.pipelineRun.aggregate({
        where: { ...where, status: "SUCCEEDED" },
        _sum: { rowsWritten: true, rowsRejected: true },
      }),
      this.prisma.pipelineRun.findFirst({
        where: { ...where, finishedAt: { not: null } },
        orderBy: { finishedAt: "desc" },
      }),
      this.prisma.source.findUnique({ where: { id: sourceId }, select: { type: true, state: true } }),
    ]);
    return {
      pipelines,
      runs,
      failedRuns,
      rowsWritten: totals._sum.rowsWritten ?? 0n,
      rowsRejected: totals._sum.rowsRejected ?? 0n,
      lastSyncAt: last?.finishedAt ?? null,
      lastStatus: last?.status ?? null,
      lastError: last?.error ?? null,
      stream: source?.type === "STREAM" ? streamStateOf(source.state) : null,
    };
  }

  /** Every STREAM source's last report, for /metrics. */
  async streamStates(): Promise<{ sourceId: string; state: StreamState }[]> {
    const sources = await this.prisma.source.findMany({
      where: { type: "STREAM", deletedAt: null },
      select: { id: true, state: true },
    });
    return sources.flatMap((s) => {
      const state = streamStateOf(s.state);
      return state ? [{ sourceId: s.id, state }] : [];
    });
  }

  /**
   * Creates a QUEUED run and sends its job, unless a run is already queued or going. The pipeline
   * row is locked meanwhile, so two callers cannot both pass the check. PUSH runs do not come
   * through here: they queue behind each other in the runner.
   */
  private async queueRun(
    pipeline: Pipeline,
    trigger: Exclude<PipelineRunTrigger, "PUSH">,
  ): Promise<{ run: PipelineRun } | { conflict: PipelineRun }> {
    const outcome = await this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM pipelines WHERE id = ${pipeline.id}::uuid FOR UPDATE`;
      const active = await tx.pipelineRun.findFirst({
        where: { pipelineId: pipeline.id, status: { in: ACTIVE } },
        orderBy: { id: "asc" },
      });
      if (active) return { conflict: active };
      const run = await tx.pipelineRun.create({
        data: { pipelineId: pipeline.id, accountId: pipeline.accountId, trigger, status: "QUEUED" },
      });
      return { run };
    });
    if ("conflict" in outcome) return outcome;
    const job: PipelineRunJob = { runId: outcome.run.id };
    const jobId = await this.jobs.send(PIPELINE_RUN_QUEUE, job).catch(async (error: unknown) => {
      // A run without a job would hold the pipeline (and the runs queued after it) forever.
      await this.prisma.pipelineRun.update({
        where: { id: outcome.run.id },
        data: { status: "FAILED", error: "The run could not be queued", finishedAt: new Date() },
      });
      throw error;
    });
    const run = await this.prisma.pipelineRun.update({ where: { id: outcome.run.id }, data: { jobId } });
    return { run };
  }

  private activeRun(pipelineId: string): Promise<PipelineRun | null> {
    return this.prisma.pipelineRun.findFirst({ where: { pipelineId, status: { in: ACTIVE } } });
  }

  private async syncSchedule(pipeline: Pipeline): Promise<void> {
    if (pipeline.schedule) {
      await this.jobs.schedule(PIPELINE_SCHEDULE_QUEUE, pipeline.id, pipeline.schedule, {
        pipelineId: pipeline.id,
      });
    } else {
      await this.jobs.unschedule(PIPELINE_SCHEDULE_QUEUE, pipeline.id);
    }
  }

  /** The pipeline if the caller's account owns it (or the caller is an admin); NOT_FOUND otherwise. */
  private async own(caller: Caller, id: string): Promise<Pipeline> {
    const who = authorize(caller, WRITE);
    const pipeline = await this.prisma.pipeline.findUnique({ where: { id } });
    if (!pipeline || (who.role !== "ADMIN" && pipeline.accountId !== who.accountId))
      throw notFound("Pipeline");
    return pipeline;
  }
}

const runInProgress = (run: PipelineRun) =>
  new AppError("CONFLICT", "A run of this pipeline is already queued or running", {
    runId: run.id,
    status: run.status,
  });

/** The stored fields of a pipeline after every check; BAD_USER_INPUT lists every problem. */
function checkPipeline(input: {
  name: string;
  steps: unknown;
  mode: PipelineMode;
  schedule: string | null;
  sourceType: string;
  dataset: { columns: unknown; keyColumns: string[] };
  load: LoadSettings;
}) {
  const problems: string[] = [];
  const name = input.name.trim();
  if (name.length < 1 || name.length > 200) problems.push("name: must be 1-200 characters");
  const schedule = input.schedule?.trim() || null;
  if (schedule !== null && !isCronExpression(schedule)) {
    problems.push("schedule: must be a cron expression of 5 fields, e.g. '0 3 * * *'");
  }
  if (input.sourceType === "PUSH" && input.mode !== "INCREMENTAL") {
    problems.push("mode: pipelines of PUSH sources are INCREMENTAL (each push adds to the dataset)");
  }
  if (input.sourceType === "STREAM" && input.mode !== "INCREMENTAL") {
    problems.push("mode: pipelines of STREAM sources are INCREMENTAL (each message adds to the dataset)");
  }
  if (input.sourceType === "STREAM" && schedule !== null) {
    problems.push("schedule: STREAM pipelines run continuously once started; give no schedule");
  }
  try {
    compilePipeline(input.steps, {
      columns: input.dataset.columns as Column[],
      keyColumns: input.dataset.keyColumns,
      generatedKey: input.load.rowKeyColumn,
    });
  } catch (error) {
    const listed = error instanceof AppError ? error.fields.problems : undefined;
    if (!Array.isArray(listed)) throw error;
    problems.push(...(listed as string[]));
  }
  problems.push(
    ...loadSettingsProblems(input.load, {
      columns: input.dataset.columns as Column[],
      keyColumns: input.dataset.keyColumns,
    }),
  );
  if (problems.length) throw badInput(`Invalid pipeline: ${problems.join("; ")}`, { problems });
  return { name, steps: input.steps as Prisma.InputJsonValue, mode: input.mode, schedule, ...input.load };
}

/** The settings as saved: `base` with what the input sets (null keeps a value, "" clears rowKeyColumn). */
function loadSettings(base: LoadSettings, input: Partial<Record<keyof LoadSettings, unknown>>): LoadSettings {
  const pick = <K extends keyof LoadSettings>(key: K): LoadSettings[K] =>
    input[key] === undefined || input[key] === null ? base[key] : (input[key] as LoadSettings[K]);
  const rowKeyColumn = pick("rowKeyColumn");
  return {
    duplicateKeys: pick("duplicateKeys"),
    allowEmptyKeys: pick("allowEmptyKeys"),
    rowKeyColumn: rowKeyColumn === "" ? null : rowKeyColumn,
    minLiveRowRatio: pick("minLiveRowRatio"),
  };
}
