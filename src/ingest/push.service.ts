// Push ingestion: records sent to a dataset (ingestRecords, POST /api/v1/ingest/{dataset}) are
// stored durably as a batch, and a pipeline run of the dataset's PUSH pipeline is queued to load
// them through the pipeline's steps (sources/connectors/push.connector.ts reads the batch). The
// caller gets the run id at once (HTTP 202); the run tells how it went.
import type { Config } from "../config.js";
import { AppError, badInput, notFound } from "../errors.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { JobQueue } from "../jobs/queue.js";
import { PIPELINE_RUN_QUEUE, type PipelineRunJob } from "../pipelines/pipeline.queue.js";
import type { PushBatch, PushBatchStore } from "../sources/connectors/push.connector.js";

export interface PushAccepted {
  /** The queued PipelineRun (raw id). */
  runId: string;
  /** Records in the batch (NDJSON: non-blank lines), each read by the run. */
  records: number;
}

const PUSH_RULES = ["PUBLISHER", "pipelines:write"];
const FINISHED = ["SUCCEEDED", "FAILED", "CANCELLED"] as const;

export class PushService implements PushBatchStore {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly jobs: JobQueue,
    private readonly config: Pick<Config, "INGEST_MAX_BYTES">,
  ) {}

  /** ingestRecords: a list of records (any JSON values; non-objects are quarantined by the run). */
  ingestRecords(caller: Caller, datasetId: string, records: readonly unknown[]): Promise<PushAccepted> {
    if (records.length === 0) throw badInput("Give at least one record", { argument: "records" });
    const body = Buffer.from(JSON.stringify(records));
    return this.ingest(caller, { datasetId }, { contentType: "application/json", body }, records.length);
  }

  /** POST /api/v1/ingest/{slug}: a JSON array, one JSON object, or NDJSON bytes. */
  ingestBody(caller: Caller, slug: string, body: unknown, ndjson: boolean): Promise<PushAccepted> {
    if (ndjson) {
      const bytes = body as Buffer;
      const records = bytes
        .toString("utf8")
        .split("\n")
        .filter((line) => line.trim() !== "").length;
      if (records === 0) throw badInput("The body holds no records", { argument: "body" });
      return this.ingest(caller, { slug }, { contentType: "application/x-ndjson", body: bytes }, records);
    }
    const records = Array.isArray(body) ? body : [body];
    if (body === null || body === undefined || records.length === 0) {
      throw badInput("The body holds no records", { argument: "body" });
    }
    const batch = { contentType: "application/json" as const, body: Buffer.from(JSON.stringify(records)) };
    return this.ingest(caller, { slug }, batch, records.length);
  }

  async batch(runId: string): Promise<PushBatch | null> {
    const row = await this.prisma.ingestBatch.findUnique({ where: { runId } });
    return row && { contentType: row.contentType as PushBatch["contentType"], body: row.body };
  }

  /** Drops batches whose run finished and that were pushed before `before`; returns how many. */
  async pruneBatches(before: Date): Promise<number> {
    const { count } = await this.prisma.ingestBatch.deleteMany({
      where: { createdAt: { lt: before }, run: { status: { in: [...FINISHED] } } },
    });
    return count;
  }

  private async ingest(
    caller: Caller,
    dataset: { datasetId: string } | { slug: string },
    batch: PushBatch,
    records: number,
  ): Promise<PushAccepted> {
    const who = authorize(caller, PUSH_RULES);
    if (batch.body.byteLength > this.config.INGEST_MAX_BYTES) {
      throw badInput(`A push holds at most ${this.config.INGEST_MAX_BYTES} bytes; split the records`, {
        argument: "records",
        maxBytes: this.config.INGEST_MAX_BYTES,
      });
    }
    const found = await this.prisma.dataset.findUnique({
      where: "slug" in dataset ? { slug: dataset.slug } : { id: dataset.datasetId },
    });
    if (!found || (who.role !== "ADMIN" && found.accountId !== who.accountId)) throw notFound("Dataset");
    if (found.status === "ARCHIVED") throw new AppError("CONFLICT", "Archived datasets cannot change");
    const pipeline = await this.prisma.pipeline.findFirst({
      where: { datasetId: found.id, source: { type: "PUSH", deletedAt: null } },
      orderBy: { id: "asc" },
    });
    if (!pipeline) {
      throw badInput(
        `Dataset ${found.slug} has no PUSH pipeline: create a source of type PUSH (createSource) and a pipeline from it to this dataset (createPipeline); pushed records then go through its steps`,
        { argument: "datasetId" },
      );
    }
    const run = await this.prisma.$transaction(async (tx) => {
      const created = await tx.pipelineRun.create({
        data: { pipelineId: pipeline.id, accountId: pipeline.accountId, trigger: "PUSH", status: "QUEUED" },
      });
      await tx.ingestBatch.create({
        data: { runId: created.id, contentType: batch.contentType, body: Buffer.from(batch.body) },
      });
      return created;
    });
    let jobId: string | null;
    try {
      jobId = await this.jobs.send<PipelineRunJob>(PIPELINE_RUN_QUEUE, { runId: run.id });
    } catch (cause) {
      // Stored but never to be read: say so on the run rather than leave it QUEUED for ever.
      await this.prisma.pipelineRun.update({
        where: { id: run.id },
        data: { status: "FAILED", finishedAt: new Date(), error: "The run could not be queued" },
      });
      throw new AppError("SERVICE_UNAVAILABLE", "The push could not be queued; send it again", {}, { cause });
    }
    await this.prisma.pipelineRun.update({ where: { id: run.id }, data: { jobId } });
    return { runId: run.id, records };
  }
}
