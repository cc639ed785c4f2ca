// Event ingestion: POST /api/v1/ingest/{slug}/events (one JSON event) and …/events/batch (a JSON
// array or NDJSON). Unlike a push, no pipeline run is queued per request: the API process runs
// the events through the steps of the dataset's PUSH pipeline in micro-batches (event-batcher.ts)
// and answers 202 once they are stored, with each event's id. The rules, by example, are in the
// README ("Event endpoints"):
// - an event keeps its own `id`; one without gets a UUID, derived from the request's
//   Idempotency-Key and the event's position when the header is sent, so a retried request
//   writes the same ids and, on a dataset keyed by `id`, replaces its rows instead of adding;
// - a nested object or array (`properties`) is kept as its JSON text, for a STRING column;
// - an event that is not an object, or that the steps reject, is quarantined with its reasons
//   on the pipeline's events run and listed in the answer.
import { createHash, randomUUID } from "node:crypto";
import type { Column } from "../catalog/columns.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { AppError, badInput, notFound } from "../errors.js";
import type { EventBus } from "../events/events.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { Logger } from "../observability/logger.js";
import { DATASET_INTERVAL_MS, recordAppended, type ProgressDeps } from "../streams/dataset-progress.js";
import { BatchWriter, clippedRaw, decodedValue, type BatchEntry } from "../streams/stream.engine.js";
import { EventBatcher, type Rejections } from "./event-batcher.js";

const EVENT_RULES = ["PUBLISHER", "pipelines:write"];
/** The quarantine origin of an event (`event#<id>`). */
const ORIGIN = "event";
/** How long an event waits for others to share its insert. */
const BATCH_MS = 50;
const MAX_BATCH = 20_000;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export interface EventsAccepted {
  /** Each event's id, in the order sent. */
  ids: string[];
  /** Events stored. */
  accepted: number;
  /** Events quarantined, by position in the request. */
  rejected: { index: number; id: string; reasons: string[] }[];
}

/** The body of a request as the route read it. */
export type EventsBody =
  { kind: "one"; value: unknown } | { kind: "many"; value: unknown } | { kind: "ndjson"; bytes: Buffer };

interface Target {
  batcher: EventBatcher;
  /** What the batcher was built from: a change to the steps or columns builds a new one. */
  version: string;
}

type Parsed = { value: unknown; text: string | null } | { error: string; text: string };

function parseBody(body: EventsBody): Parsed[] {
  if (body.kind === "one") return [{ value: body.value, text: null }];
  if (body.kind === "many") {
    if (!Array.isArray(body.value))
      throw badInput("The body must be a JSON array of events or NDJSON", { argument: "body" });
    return body.value.map((value) => ({ value, text: null }));
  }
  return body.bytes
    .toString("utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((text) => {
      try {
        return { value: JSON.parse(text) as unknown, text };
      } catch (error) {
        return { error: `invalid JSON: ${(error as Error).message}`, text };
      }
    });
}

/** A UUID (version 8: derived by us) from the request's Idempotency-Key and the event's position. */
function derivedId(scope: string, key: string, index: number): string {
  const hex = createHash("sha256").update(`${scope}\n${key}\n${index}`).digest("hex");
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Nested objects and arrays become their JSON text (documented rule). */
function flattened(record: Record<string, unknown>): Record<string, unknown> {
  for (const [name, value] of Object.entries(record)) {
    if (typeof value === "object" && value !== null) record[name] = JSON.stringify(value);
  }
  return record;
}

function entryOf(parsed: Parsed, id: () => string): BatchEntry {
  if ("error" in parsed) {
    return {
      id: id(),
      origin: ORIGIN,
      decoded: { ok: false, reason: parsed.error },
      raw: () => clippedRaw(parsed.text),
    };
  }
  const raw = () => clippedRaw(parsed.text ?? JSON.stringify(parsed.value) ?? "");
  const decoded = decodedValue(parsed.value);
  if (!decoded.ok) return { id: id(), origin: ORIGIN, decoded, raw };
  const own = decoded.record.id;
  const eventId = typeof own === "string" || typeof own === "number" ? String(own) : id();
  decoded.record.id = eventId;
  return { id: eventId, origin: ORIGIN, decoded: { ok: true, record: flattened(decoded.record) }, raw };
}

export class EventsService {
  private readonly targets = new Map<string, Target>();
  /** The events run of each pipeline this process writes to. */
  private readonly runs = new Map<string, Promise<string>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly database: string,
    private readonly events: EventBus,
    private readonly log: Logger,
  ) {}

  async ingest(
    caller: Caller,
    slug: string,
    body: EventsBody,
    idempotencyKey?: string,
  ): Promise<EventsAccepted> {
    const who = authorize(caller, EVENT_RULES);
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw badInput("Idempotency-Key must be 1 to 255 printable ASCII characters", {
        argument: "Idempotency-Key",
      });
    }
    const dataset = await this.prisma.dataset.findUnique({ where: { slug } });
    if (!dataset || (who.role !== "ADMIN" && dataset.accountId !== who.accountId)) throw notFound("Dataset");
    if (dataset.status === "ARCHIVED") throw new AppError("CONFLICT", "Archived datasets cannot change");
    const parsed = parseBody(body);
    if (!parsed.length) throw badInput("The body holds no events", { argument: "body" });
    const pipeline = await this.prisma.pipeline.findFirst({
      where: { datasetId: dataset.id, source: { type: "PUSH", deletedAt: null } },
      orderBy: { id: "asc" },
    });
    if (!pipeline) {
      throw badInput(
        `Dataset ${dataset.slug} has no PUSH pipeline: create a source of type PUSH and a pipeline from it to this dataset; events go through its steps`,
        { argument: "slug" },
      );
    }
    const scope = dataset.id;
    const entries = parsed.map((p, index) =>
      entryOf(p, () =>
        idempotencyKey === undefined ? randomUUID() : derivedId(scope, idempotencyKey, index),
      ),
    );
    const target = await this.target({ ...pipeline, dataset });
    let rejections: Rejections;
    try {
      rejections = await target.batcher.add(entries);
    } catch (cause) {
      this.log.warn({ err: cause, datasetId: dataset.id }, "events not stored");
      throw new AppError(
        "SERVICE_UNAVAILABLE",
        "The events could not be stored; send them again (with the same Idempotency-Key)",
        {},
        { cause },
      );
    }
    const ids = entries.map((e) => e.id!);
    const rejected = entries.flatMap((e, index) => {
      const reasons = rejections.get(`${ORIGIN}#${e.id}`);
      return reasons ? [{ index, id: e.id!, reasons }] : [];
    });
    return { ids, accepted: ids.length - rejected.length, rejected };
  }

  /** Writes what waits (shutdown). */
  async flush(): Promise<void> {
    await Promise.all([...this.targets.values()].map((t) => t.batcher.flush()));
  }

  private async target(pipeline: {
    id: string;
    accountId: string;
    steps: unknown;
    dataset: { id: string; accountId: string; tableName: string; columns: unknown; keyColumns: string[] };
  }): Promise<Target> {
    const { dataset } = pipeline;
    const version = JSON.stringify([pipeline.steps, dataset.tableName, dataset.columns, dataset.keyColumns]);
    const known = this.targets.get(pipeline.id);
    if (known?.version === version) return known;
    const runId = await this.runOf(pipeline);
    const writer = new BatchWriter(this.clickhouse, {
      database: this.database,
      dataset: {
        id: dataset.id,
        tableName: dataset.tableName,
        columns: dataset.columns as Column[],
        keyColumns: dataset.keyColumns,
      },
      steps: pipeline.steps,
      runId,
    });
    const progress = { written: 0, savedAt: 0, saving: false };
    const onStored = (outcome: { written: number; rejected: number }, read: number) => {
      progress.written += outcome.written;
      this.count(runId, read, outcome);
      if (progress.saving || Date.now() - progress.savedAt < DATASET_INTERVAL_MS) return;
      progress.saving = true;
      const changed = progress.written;
      progress.written = 0;
      progress.savedAt = Date.now();
      recordAppended(this.progressDeps(), dataset, changed, runId)
        .catch((err: unknown) => this.log.warn({ err }, "could not record appended events"))
        .finally(() => (progress.saving = false));
    };
    const target = {
      version,
      batcher: new EventBatcher(writer, { batchMs: BATCH_MS, maxBatch: MAX_BATCH, onStored }),
    };
    this.targets.set(pipeline.id, target);
    return target;
  }

  private progressDeps(): ProgressDeps {
    return { prisma: this.prisma, clickhouse: this.clickhouse, database: this.database, events: this.events };
  }

  private count(runId: string, read: number, outcome: { written: number; rejected: number }): void {
    this.prisma.pipelineRun
      .update({
        where: { id: runId },
        data: {
          rowsRead: { increment: read },
          rowsWritten: { increment: outcome.written },
          rowsRejected: { increment: outcome.rejected },
          finishedAt: new Date(),
        },
      })
      .catch((err: unknown) => this.log.warn({ err }, "could not count events on their run"));
  }

  /**
   * The run events of this pipeline are counted on, one per process: a PUSH run marked SUCCEEDED
   * from the start, since a RUNNING one would hold back the pipeline's queued pushes (runs of a
   * pipeline go in order). Its counters grow; its rejected rows are the quarantined events.
   */
  private runOf(pipeline: { id: string; accountId: string }): Promise<string> {
    let run = this.runs.get(pipeline.id);
    if (!run) {
      run = this.prisma.$transaction(async (tx) => {
        const created = await tx.pipelineRun.create({
          data: {
            pipelineId: pipeline.id,
            accountId: pipeline.accountId,
            trigger: "PUSH",
            status: "SUCCEEDED",
            startedAt: new Date(),
            finishedAt: new Date(),
          },
        });
        await tx.pipelineLog.create({
          data: {
            runId: created.id,
            pipelineId: pipeline.id,
            level: "INFO",
            message: "Events from the event endpoints are counted on this run",
          },
        });
        return created.id;
      });
      run.catch(() => this.runs.delete(pipeline.id));
      this.runs.set(pipeline.id, run);
    }
    return run;
  }
}
