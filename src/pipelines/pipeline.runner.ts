// The worker side of a pipeline run (the PIPELINE_RUN_QUEUE job): read the source through its
// connector, run the rows through the steps, write good rows to ClickHouse in batches and bad ones
// to the quarantine, then make the result visible in one step. A run interrupted anywhere (worker
// killed, error, retry) leaves the dataset as it was or as one clean run would.
import pg from "pg";
import { canonicalKey, COLUMN_NAME_PATTERN, type Column } from "../catalog/columns.js";
import { addDatasetColumns, createDatasetTable, dropDatasetTable } from "../catalog/dataset-table.js";
import type { Config } from "../config.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { computeColumnStats } from "../catalog/column-stats.js";
import { AppError, badInput } from "../errors.js";
import { newEvent, type EventBus, type PipelineRunUpdated } from "../events/events.js";
import type { LogLevel, Prisma, PrismaClient, PipelineRun } from "../generated/prisma/client.js";
import type { JobInfo } from "../jobs/boss.js";
import type { JobQueue } from "../jobs/queue.js";
import type { Logger } from "../observability/logger.js";
import { RowStream, type DatasetRef } from "../records/records.writer.js";
import { connectorFor, type ConnectorSettings } from "../sources/connectors/registry.js";
import type { ConnectorLog, SourceReader } from "../sources/connectors/types.js";
import { redact, type SourceService } from "../sources/source.service.js";
import { PIPELINE_RUN_QUEUE, type PipelineRunJob } from "./pipeline.queue.js";
import {
  emptyKeyReason,
  fullRefreshRefusal,
  generatedRowKey,
  KeyTracker,
  type LoadSettings,
} from "./load-rules.js";
import {
  countLiveRows,
  quarantine,
  rawTableNames,
  stagingTableName,
  swapIntoLive,
  type RejectedRow,
} from "./run-tables.js";
import { engineLoad } from "./engine/engine-load.js";
import { compilePipeline, type CompiledPipeline } from "./steps/compile.js";

export type RunnerConfig = Pick<
  Config,
  | "CLICKHOUSE_DATABASE"
  | "DATABASE_URL"
  | "PIPELINE_BATCH_ROWS"
  | "PIPELINE_ENGINE_LOAD"
  | "PIPELINE_ENGINE_PARTS_FROM_BYTES"
>;

/** How often counters and progress are saved and published, and cancellation is checked. */
const PROGRESS_INTERVAL_MS = 1000;
/** Rejected rows buffered before a quarantine insert. */
const QUARANTINE_BATCH = 5000;
/** How long a run waits before trying again when another run of its pipeline holds the lock. */
const BUSY_RETRY_SECONDS = 2;
const MAX_ERROR_LENGTH = 2000;

type LoadedRun = Prisma.PipelineRunGetPayload<{
  include: { pipeline: { include: { source: true; dataset: true } } };
}>;

class Cancelled extends Error {
  constructor() {
    super("The run was cancelled");
  }
}

/**
 * Counters of one attempt, saved at most once a second. Once the run ends they add up: every row
 * read is written, rejected (quarantined), filtered or a duplicate.
 */
interface Counters {
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  rowsFiltered: number;
  rowsDuplicate: number;
  bytesRead: number;
  progress: number | null;
}

const zeroCounters = (): Counters => ({
  rowsRead: 0,
  rowsWritten: 0,
  rowsRejected: 0,
  rowsFiltered: 0,
  rowsDuplicate: 0,
  bytesRead: 0,
  progress: null,
});

export class PipelineRunner {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly config: RunnerConfig,
    private readonly sources: SourceService,
    private readonly connectors: ConnectorSettings,
    private readonly events: EventBus,
    private readonly jobs: JobQueue,
    private readonly log: Logger,
  ) {}

  // The catalogue's column statistics, from the rows the run left. Telling the catalogue is not
  // part of the load: a failure here is logged and the run stays SUCCEEDED.
  private async refreshColumnStats(
    dataset: { id: string; tableName: string; columns: Prisma.JsonValue },
    database: string,
  ): Promise<void> {
    try {
      const columns = dataset.columns as unknown as Column[];
      const stats = await computeColumnStats(this.clickhouse, database, dataset.tableName, columns);
      await this.prisma.dataset.update({
        where: { id: dataset.id },
        data: { columnStats: stats as unknown as Prisma.InputJsonValue, columnStatsAt: new Date() },
      });
    } catch (err) {
      this.log.warn({ err, datasetId: dataset.id }, "could not compute column statistics");
    }
  }

  /** The PIPELINE_RUN_QUEUE handler. Throws only for failures worth retrying. */
  async handle(data: PipelineRunJob, job: Pick<JobInfo, "retryCount" | "retryLimit">): Promise<void> {
    const first = await this.prisma.pipelineRun.findUnique({ where: { id: data.runId } });
    if (!first || (first.status !== "QUEUED" && first.status !== "RUNNING")) return;
    const lock = await PipelineLock.acquire(this.config.DATABASE_URL, first.pipelineId);
    if (!lock) {
      // Another run of this pipeline holds it (a PUSH run behind another, or a retry of a run whose
      // worker is not known dead yet): come back shortly rather than run side by side.
      await this.jobs.send(PIPELINE_RUN_QUEUE, data, { startAfter: BUSY_RETRY_SECONDS });
      return;
    }
    try {
      // Runs of a pipeline go in the order they were queued (ids are time-ordered UUIDv7): a
      // later push must not be overwritten by an earlier one that waited for the lock.
      const earlier = await this.prisma.pipelineRun.findFirst({
        where: { pipelineId: first.pipelineId, id: { lt: first.id }, status: { in: ["QUEUED", "RUNNING"] } },
        select: { id: true },
      });
      if (earlier) {
        await this.jobs.send(PIPELINE_RUN_QUEUE, data, { startAfter: BUSY_RETRY_SECONDS });
        return;
      }
      const run = await this.claim(data.runId);
      if (!run) return;
      await this.execute(run, first.status === "RUNNING" || (job.retryCount ?? 0) > 0, job);
    } finally {
      await lock.release();
    }
  }

  /** QUEUED or RUNNING (a retry after a crash) → RUNNING with counters reset. */
  private async claim(runId: string): Promise<LoadedRun | null> {
    const claimed = await this.prisma.pipelineRun.updateMany({
      where: { id: runId, status: { in: ["QUEUED", "RUNNING"] } },
      data: {
        status: "RUNNING",
        startedAt: new Date(),
        finishedAt: null,
        ...zeroCounters(),
        newFields: [],
      },
    });
    if (claimed.count === 0) return null;
    return this.prisma.pipelineRun.findUniqueOrThrow({
      where: { id: runId },
      include: { pipeline: { include: { source: true, dataset: true } } },
    });
  }

  private async execute(
    run: LoadedRun,
    restarted: boolean,
    job: Pick<JobInfo, "retryCount" | "retryLimit">,
  ): Promise<void> {
    const { pipeline } = run;
    const { source, dataset } = pipeline;
    const database = this.config.CLICKHOUSE_DATABASE;
    const staging = pipeline.mode === "FULL_REFRESH" ? stagingTableName(dataset.tableName, run.id) : null;
    const counters = zeroCounters();
    const settings: LoadSettings = pipeline;
    const abort = new AbortController();
    let secrets: Record<string, string> = {};
    const note = (level: LogLevel, message: string, data?: Record<string, unknown>) =>
      this.note(run, level, message, data);
    const watch = new ProgressWatch(
      () => this.saveProgress(run, counters),
      () => abort.abort(new Cancelled()),
      (err) => this.log.warn({ err, runId: run.id }, "could not save run progress"),
    );
    try {
      await note("INFO", restarted ? "Run restarted after an interrupted attempt" : "Run started", {
        mode: pipeline.mode,
        trigger: run.trigger,
        attempt: (job.retryCount ?? 0) + 1,
      });
      await this.publishUpdate(run, "RUNNING", counters);
      if (source.deletedAt) throw badInput("The pipeline's source was deleted");
      const connector = connectorFor(source.type, this.connectors);
      if (!connector) throw badInput(`${source.type} sources cannot be synced yet`);
      secrets = this.sources.secretsOf(source);

      const columns = [...(dataset.columns as unknown as Column[])];
      const target: DatasetRef = {
        id: dataset.id,
        tableName: staging ?? dataset.tableName,
        columns,
        keyColumns: dataset.keyColumns,
      };
      const compiled = compilePipeline(pipeline.steps, { ...target, generatedKey: settings.rowKeyColumn });
      if (staging) {
        // A previous attempt of this run may have left its staging table half-filled.
        await dropDatasetTable(this.clickhouse, database, staging);
        await createDatasetTable(this.clickhouse, database, staging, columns);
      }

      const context = {
        sourceId: source.id,
        runId: run.id,
        config: source.config as Record<string, unknown>,
        secrets,
        checkpoint: pipeline.cursor ?? null,
        mode: pipeline.mode,
        log: connectorLog(this.log.child({ runId: run.id })),
        signal: abort.signal,
      };

      const newFields: string[] = [];
      const added: Column[] = [];
      const onNewField = async (field: string) => {
        const policy = pipeline.newFieldPolicy;
        if (policy === "FAIL") {
          throw badInput(
            `The source has a field "${field}" the dataset does not have (the pipeline's new-field policy is FAIL)`,
          );
        }
        newFields.push(field);
        if (policy === "ADD_COLUMN" && COLUMN_NAME_PATTERN.test(field)) {
          const column: Column = { name: field, type: "STRING", nullable: true };
          await addDatasetColumns(this.clickhouse, database, target.tableName, [column]);
          columns.push(column);
          added.push(column);
          await note("INFO", `New field "${field}": added as a nullable STRING column`, { field });
        } else if (policy === "ADD_COLUMN") {
          await note("WARN", `New field "${field}" cannot be a column name; ignored`, { field });
        } else {
          await note("INFO", `New field "${field}" ignored (new-field policy IGNORE)`, { field });
        }
      };

      // A local CSV file is parsed and checked by ClickHouse when the steps allow it.
      const local =
        this.config.PIPELINE_ENGINE_LOAD && connector.localCsv ? await connector.localCsv(context) : null;
      const byEngine = local
        ? await engineLoad({
            clickhouse: this.clickhouse,
            database,
            runId: run.id,
            datasetId: dataset.id,
            target,
            rawTables: rawTableNames(dataset.tableName, run.id),
            partsFromBytes: this.config.PIPELINE_ENGINE_PARTS_FROM_BYTES,
            freshTarget: staging !== null,
            steps: pipeline.steps,
            settings,
            newFieldPolicy: pipeline.newFieldPolicy,
            compiled,
            file: local,
            signal: abort.signal,
            onBytes: (bytes) => {
              // A file parsed again from its start (engine-load.ts) reports from 0 again.
              const progress = Math.min(0.9, (0.9 * bytes) / Math.max(1, local.size));
              counters.progress = Math.max(counters.progress ?? 0, progress);
            },
          })
        : null;
      let checkpoint: unknown;
      if (byEngine?.loaded) {
        Object.assign(counters, byEngine.counters);
        checkpoint = local!.checkpoint;
        for (const field of byEngine.newFields) await onNewField(field);
        await note(
          "INFO",
          `Loaded by ClickHouse: ${counters.rowsRead} rows, ${byEngine.nodeRows} of them through the Node steps`,
          {
            ...counters,
            rowsThroughNodeSteps: byEngine.nodeRows,
            phases: byEngine.phases,
          },
        );
      } else {
        if (byEngine) await note("INFO", `Loading in Node: ${byEngine.reason}`, { reason: byEngine.reason });
        const reader = connector.read(context);
        await this.loadInNode(reader, compiled, {
          run,
          target,
          settings,
          counters,
          abort,
          watch,
          onNewField,
        });
        checkpoint = reader.checkpoint() ?? null;
      }
      if (counters.rowsDuplicate) {
        await note("INFO", `${counters.rowsDuplicate} rows had a key another row of this load had`, {
          duplicateKeys: settings.duplicateKeys,
          rowsDuplicate: counters.rowsDuplicate,
        });
      }
      // A full refresh's live rows once it is swapped in: its staging table's, which only this run writes.
      let staged: number | null = null;
      if (staging) {
        // The engine load knows what its staging table holds: each row it wrote has a key of its own.
        const written = byEngine?.loaded ? counters.rowsWritten : undefined;
        staged = await this.checkFullRefresh(
          settings,
          counters,
          database,
          dataset.tableName,
          staging,
          written,
        );
      }
      // From here on the run commits: no progress save may land after its final status.
      await watch.stop();
      if (watch.cancelled) throw new Cancelled();

      if (staging) await swapIntoLive(this.clickhouse, database, dataset.tableName, staging);
      const rowCount = staged ?? (await countLiveRows(this.clickhouse, database, dataset.tableName));
      counters.progress = 1;
      const finishedAt = new Date();
      checkpoint ??= null;
      const updated = await this.prisma.$transaction(async (tx) => {
        await tx.pipelineRun.update({
          where: { id: run.id },
          data: {
            ...counters,
            status: "SUCCEEDED",
            finishedAt,
            error: null,
            newFields,
            cursorCheckpoint: checkpoint as Prisma.InputJsonValue,
          },
        });
        await tx.pipeline.update({
          where: { id: pipeline.id },
          data: { cursor: checkpoint === null ? undefined : (checkpoint as Prisma.InputJsonValue) },
        });
        const current = await tx.dataset.findUniqueOrThrow({ where: { id: dataset.id } });
        const known = new Set((current.columns as unknown as Column[]).map((c) => c.name));
        const withAdded = [
          ...(current.columns as unknown as Column[]),
          ...added.filter((c) => !known.has(c.name)),
        ];
        return tx.dataset.update({
          where: { id: dataset.id },
          data: {
            version: { increment: 1 },
            rowCount,
            lastUpdatedAt: finishedAt,
            ...(added.length ? { columns: withAdded as unknown as Prisma.InputJsonValue } : {}),
          },
        });
      });
      await note("INFO", "Run succeeded", { ...counters, rowCount, newFields });
      await this.refreshColumnStats(updated, database);
      await this.publishUpdate(run, "SUCCEEDED", counters);
      await this.events.publish(
        newEvent("dataset.updated", {
          datasetId: dataset.id,
          accountId: dataset.accountId,
          version: updated.version,
          rowCount,
          changedRows: counters.rowsWritten,
          cause: run.trigger === "PUSH" ? "PUSH" : "PIPELINE_RUN",
          runId: run.id,
        }),
      );
      await this.publishFinished(run, "pipeline.run.succeeded", counters, null);
    } catch (error) {
      abort.abort();
      if (staging) {
        await dropDatasetTable(this.clickhouse, database, staging).catch((err: unknown) =>
          this.log.warn({ err, runId: run.id }, "could not drop a staging table"),
        );
      }
      await watch.stop();
      await this.fail(run, error, watch.cancelled || error instanceof Cancelled, counters, secrets, job);
    } finally {
      await watch.stop();
    }
  }

  /**
   * The Node path: reads the source through its connector, runs each record through the steps,
   * writes good rows in streaming inserts and quarantines the others.
   */
  private async loadInNode(
    reader: SourceReader,
    compiled: CompiledPipeline,
    ctx: {
      run: LoadedRun;
      target: DatasetRef;
      settings: LoadSettings;
      counters: Counters;
      abort: AbortController;
      watch: ProgressWatch;
      onNewField: (field: string) => Promise<void>;
    },
  ): Promise<void> {
    const { run, target, settings, counters, abort, watch, onNewField } = ctx;
    const { pipeline } = run;
    const { dataset } = pipeline;
    const database = this.config.CLICKHOUSE_DATABASE;
    const note = (level: LogLevel, message: string, data?: Record<string, unknown>) =>
      this.note(run, level, message, data);
    const totalBytes = (await reader.totalBytes?.()) ?? null;
    const seenFields = new Set<string>();
    // LAST_WINS writes a row again for its key: the one it replaces was stored but does not count.
    let stored = 0;
    let replaced = 0;
    const rows = new RowStream(this.clickhouse, database, target, {
      runId: run.id,
      rowsPerInsert: this.config.PIPELINE_BATCH_ROWS,
      signal: abort.signal,
      onStored: (n) => {
        stored += n;
        counters.rowsWritten = Math.max(0, stored - replaced);
      },
      represented: true, // the steps' final check leaves every value so
    });
    const bad: RejectedRow[] = [];
    let origin = "";
    const flushRejected = async () => {
      await quarantine(this.clickhouse, database, dataset.id, bad);
      bad.length = 0;
    };
    const reject = (row: RejectedRow) => {
      counters.rowsRejected++;
      bad.push(row);
    };
    const keys = new KeyTracker(settings.duplicateKeys);
    const keyColumns = dataset.keyColumns;

    // One loop, synchronous per row unless an expression step or a new field needs to wait:
    // a promise or generator per row and step cost more than the steps themselves.
    let milestone = 100_000;
    try {
      for await (const row of reader) {
        if (watch.cancelled) throw new Cancelled();
        counters.rowsRead++;
        origin = row.origin ?? "";
        if (!row.ok) {
          reject({ runId: run.id, origin, rowNumber: row.rowNumber, raw: row.raw, reasons: row.reasons });
        } else {
          counters.bytesRead += row.bytes ?? 0;
          if (row.progress !== undefined) counters.progress = Math.min(0.99, row.progress);
          else if (totalBytes) counters.progress = Math.min(0.99, counters.bytesRead / totalBytes);
          for (const field in row.record) {
            if (seenFields.has(field)) continue;
            seenFields.add(field);
            if (compiled.uses(field)) continue;
            // Rows already sent lack a column the policy may add: their insert ends first.
            await rows.columnsChanged();
            await onNewField(field);
          }
          if (settings.rowKeyColumn !== null) {
            row.record[settings.rowKeyColumn] = generatedRowKey(pipeline.mode, run.id, origin, row.rowNumber);
          }
          const pending = compiled.processRecord(row.rowNumber, row.record);
          const result = pending instanceof Promise ? await pending : pending;
          const rejectResult = (reasons: string[]) =>
            reject({
              runId: run.id,
              origin,
              rowNumber: row.rowNumber,
              raw: JSON.stringify(row.record),
              reasons,
            });
          if (!result) counters.rowsFiltered++;
          else if (!result.ok) rejectResult(result.reasons);
          else {
            const empty = emptyKeyReason(settings, keyColumns, result.row);
            const decision = empty ? null : keys.decide(canonicalKey(keyColumns, result.row), row.rowNumber);
            if (empty) rejectResult([empty]);
            else if (decision!.kind === "quarantine") rejectResult([decision!.reason]);
            else if (decision!.kind === "skip") counters.rowsDuplicate++;
            else {
              if (decision!.kind === "replaces") {
                counters.rowsDuplicate++;
                replaced++;
              }
              // A replacing row gets a version of its own, above the row it replaces even when
              // both are in one insert (equal versions leave the survivor to the merge order).
              const sending = rows.write(result.row, decision!.kind === "replaces");
              if (sending) await sending;
            }
          }
        }
        if (bad.length >= QUARANTINE_BATCH) await flushRejected();
        if (counters.rowsRead >= milestone) {
          await note("INFO", `Read ${milestone} rows`, { ...counters });
          milestone *= 2;
        }
      }
      if (bad.length) await flushRejected();
      await rows.finish();
    } catch (error) {
      await rows.abort();
      throw error;
    }
    counters.rowsWritten = stored - replaced;
  }

  /**
   * Refuses (BAD_USER_INPUT, so the run fails at once) a full refresh that would empty the dataset;
   * otherwise returns the staging table's live rows.
   */
  private async checkFullRefresh(
    settings: LoadSettings,
    counters: Counters,
    database: string,
    liveTable: string,
    staging: string,
    staged: number | undefined,
  ): Promise<number> {
    const [newRows, liveRows] = await Promise.all([
      staged ?? countLiveRows(this.clickhouse, database, staging),
      countLiveRows(this.clickhouse, database, liveTable),
    ]);
    const refusal = fullRefreshRefusal(settings.minLiveRowRatio, {
      rowsRead: counters.rowsRead,
      newRows,
      liveRows,
    });
    if (refusal) throw badInput(refusal, { newRows, liveRows, minLiveRowRatio: settings.minLiveRowRatio });
    return newRows;
  }

  /**
   * Records how the attempt ended. Cancelled: nothing to do. A client error (bad settings, the FAIL
   * policy, a file that does not exist) fails at once; anything else is retried by pg-boss until
   * the last attempt, which fails the run.
   */
  private async fail(
    run: LoadedRun,
    error: unknown,
    cancelled: boolean,
    counters: Counters,
    secrets: Record<string, string>,
    job: Pick<JobInfo, "retryCount" | "retryLimit">,
  ): Promise<void> {
    if (cancelled) {
      await this.note(run, "WARN", "Run cancelled; the dataset is unchanged", { ...counters });
      await this.publishUpdate(run, "CANCELLED", counters);
      return;
    }
    const message = redact(describe(error), secrets).slice(0, MAX_ERROR_LENGTH);
    const final =
      error instanceof AppError && error.code === "BAD_USER_INPUT"
        ? true
        : (job.retryCount ?? 0) >= (job.retryLimit ?? 0);
    if (!(error instanceof AppError)) this.log.error({ err: error, runId: run.id }, "pipeline run failed");
    const status = final ? "FAILED" : "QUEUED";
    await this.prisma.pipelineRun.updateMany({
      where: { id: run.id, status: "RUNNING" },
      data: { ...counters, status, error: message, finishedAt: final ? new Date() : null },
    });
    await this.note(
      run,
      "ERROR",
      final ? `Run failed: ${message}` : `Attempt failed, will retry: ${message}`,
      {
        ...counters,
        attempt: (job.retryCount ?? 0) + 1,
      },
    );
    await this.publishUpdate(run, status, counters);
    if (final) await this.publishFinished(run, "pipeline.run.failed", counters, message);
    // Retried by pg-boss; after the last attempt the job lands in the dead-letter queue. Input
    // problems would fail the same way again: the job is done.
    if (!(error instanceof AppError && error.code === "BAD_USER_INPUT")) throw error;
  }

  /**
   * The dead-letter handler: the job gave up. A run still QUEUED or RUNNING then lost its worker
   * on the last attempt (missed heartbeats); it is failed so the pipeline can run again.
   */
  async abandon(data: PipelineRunJob): Promise<void> {
    const run = await this.prisma.pipelineRun.findUnique({
      where: { id: data.runId },
      include: { pipeline: { include: { source: true, dataset: true } } },
    });
    if (!run || (run.status !== "QUEUED" && run.status !== "RUNNING")) return;
    // The run's tables go first: once the run reads FAILED, nothing of it is left behind (and
    // a failed drop leaves the run as it was, for the dead-letter job's retry).
    const database = this.config.CLICKHOUSE_DATABASE;
    for (const raw of rawTableNames(run.pipeline.dataset.tableName, run.id))
      await dropDatasetTable(this.clickhouse, database, raw);
    if (run.pipeline.mode === "FULL_REFRESH") {
      const staging = stagingTableName(run.pipeline.dataset.tableName, run.id);
      await dropDatasetTable(this.clickhouse, database, staging);
    }
    const error = "The run's worker stopped responding and its retries are used up";
    const failed = await this.prisma.pipelineRun.updateMany({
      where: { id: run.id, status: { in: ["QUEUED", "RUNNING"] } },
      data: { status: "FAILED", error, finishedAt: new Date() },
    });
    if (!failed.count) return;
    const counters = {
      rowsRead: Number(run.rowsRead),
      rowsWritten: Number(run.rowsWritten),
      rowsRejected: Number(run.rowsRejected),
      rowsFiltered: Number(run.rowsFiltered),
      rowsDuplicate: Number(run.rowsDuplicate),
      bytesRead: Number(run.bytesRead),
      progress: run.progress,
    };
    await this.note(run, "ERROR", `Run failed: ${error}`);
    await this.publishUpdate(run, "FAILED", counters);
    await this.publishFinished(run, "pipeline.run.failed", counters, error);
  }

  /** Saves the counters while the run is RUNNING; false once it is not (stopPipeline cancelled it). */
  private async saveProgress(run: PipelineRun, counters: Counters): Promise<boolean> {
    const saved = await this.prisma.pipelineRun.updateMany({
      where: { id: run.id, status: "RUNNING" },
      data: { ...counters },
    });
    if (saved.count) await this.publishUpdate(run, "RUNNING", counters);
    return saved.count > 0;
  }

  private async note(run: PipelineRun, level: LogLevel, message: string, data?: Record<string, unknown>) {
    await this.prisma.pipelineLog.create({
      data: {
        runId: run.id,
        pipelineId: run.pipelineId,
        level,
        message,
        data: data as Prisma.InputJsonValue | undefined,
      },
    });
  }

  private publishUpdate(run: PipelineRun, status: PipelineRunUpdated["data"]["status"], c: Counters) {
    return this.events.publish(
      newEvent("pipeline.run.updated", {
        runId: run.id,
        pipelineId: run.pipelineId,
        accountId: run.accountId,
        status,
        progress: c.progress,
        rowsRead: c.rowsRead,
        rowsWritten: c.rowsWritten,
        rowsRejected: c.rowsRejected,
      }),
    );
  }

  private publishFinished(
    run: LoadedRun,
    type: "pipeline.run.succeeded" | "pipeline.run.failed",
    c: Counters,
    error: string | null,
  ) {
    return this.events.publish(
      newEvent(type, {
        runId: run.id,
        pipelineId: run.pipelineId,
        datasetId: run.pipeline.datasetId,
        accountId: run.accountId,
        rowsRead: c.rowsRead,
        rowsWritten: c.rowsWritten,
        rowsRejected: c.rowsRejected,
        error,
      }),
    );
  }
}

/**
 * Saves a run's counters about once a second while it goes, one save at a time, and notices when
 * the run stopped being RUNNING (stopPipeline cancelled it).
 */
class ProgressWatch {
  cancelled = false;
  private inflight: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(save: () => Promise<boolean>, onCancel: () => void, onError: (err: unknown) => void) {
    this.timer = setInterval(() => {
      if (this.inflight) return;
      this.inflight = save()
        .then((running) => {
          if (!running) {
            this.cancelled = true;
            onCancel();
          }
        }, onError)
        .finally(() => (this.inflight = null));
    }, PROGRESS_INTERVAL_MS);
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.inflight;
  }
}

function describe(error: unknown): string {
  if (error instanceof AppError) return error.message;
  if (error instanceof Error) return `${error.name}: ${error.message}`;
  return String(error);
}

function connectorLog(log: Logger): ConnectorLog {
  return {
    debug: (fields, message) => log.debug(fields, message),
    info: (fields, message) => log.info(fields, message),
    warn: (fields, message) => log.warn(fields, message),
  };
}

/**
 * One run per pipeline at a time, across every worker: a session advisory lock on a connection
 * of its own. PostgreSQL releases it when the connection ends, so a killed worker frees it.
 */
export class PipelineLock {
  private constructor(private readonly client: pg.Client) {}

  static async acquire(databaseUrl: string, pipelineId: string): Promise<PipelineLock | null> {
    const client = new pg.Client({ connectionString: databaseUrl, application_name: "datahus-run-lock" });
    await client.connect();
    try {
      const { rows } = await client.query<{ locked: boolean }>(
        "SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked",
        [`pipeline:${pipelineId}`],
      );
      if (rows[0]?.locked) return new PipelineLock(client);
    } catch (error) {
      await client.end();
      throw error;
    }
    await client.end();
    return null;
  }

  async release(): Promise<void> {
    await this.client.end().catch(() => {});
  }
}
