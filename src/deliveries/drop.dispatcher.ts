// File drops from trigger to target. A drop is planned once (its folder time, the dataset version
// and the range of row versions it covers, stored as the drop's DeliveryEvent) so every retry
// writes the same folder with the same rows. Each try reads the records from ClickHouse, stages
// the part files locally, charges a METERED dataset's buyer what reading those records costs,
// uploads them with the manifest last, and records a DeliveryAttempt. One drop per delivery runs
// at a time (the queue is `stately` per delivery), so watermarks advance in order.
import { isUniqueViolation } from "../db/prisma-errors.js";
import { uuidv7 } from "../db/uuid.js";
import type { Column } from "../catalog/columns.js";
import type { UsageRecorder } from "../credits/usage-recorder.js";
import { decideAccess } from "../credits/access.js";
import type { Ledger } from "../credits/ledger.js";
import { Metering, type Hold } from "../credits/metering.js";
import { AppError } from "../errors.js";
import type { EventBus } from "../events/events.js";
import type {
  Dataset,
  Delivery,
  DeliveryAttemptStatus,
  DeliveryKind,
  PrismaClient,
} from "../generated/prisma/client.js";
import type { JobDefinition } from "../jobs/boss.js";
import type { JobQueue } from "../jobs/queue.js";
import type { LookupFunction } from "node:net";
import {
  OutboundRefused,
  checkHost,
  checkTarget,
  pinnedLookup,
  type OutboundPolicy,
} from "../net/outbound.js";
import type { Logger } from "../observability/logger.js";
import type { TryOutcome } from "../observability/worker-metrics.js";
import { ref } from "../records/read.service.js";
import type { RecordsReader } from "../records/records.reader.js";
import { DeliveryOutcomes } from "./delivery.outcomes.js";
import type { DeliveryRouting } from "./delivery.routing.js";
import type { DeliverySecrets } from "./delivery.secrets.js";
import { dropFiles, parseDropTarget, stageDrop, type DropReceipt, type DropTarget } from "./drops/index.js";
import { inTransaction, type WebhookSettings } from "./webhook.dispatcher.js";
import { nextRetryDelay } from "./webhook.retry.js";

export const DROP_QUEUE = "deliveries.drop";
/** Cron ticks of SCHEDULE deliveries (one pg-boss schedule per delivery); each tick starts a drop. */
export const DROP_SCHEDULE_QUEUE = "deliveries.drop.schedule";
/** The eventType of a drop's DeliveryEvent and attempts. */
export const DROP_EVENT = "dataset.drop";

export interface DropJob {
  deliveryId: string;
  /** The drop's id: its DeliveryEvent and the eventId of its attempts. */
  dropId: string;
  attempt: number;
  /** Where this round of tries started (1, or the try a resume began with). */
  firstAttempt: number;
}

export interface DropTick {
  deliveryId: string;
}

export type DropSettings = Pick<
  WebhookSettings,
  "retrySchedule" | "jitter" | "disableAfter" | "policy" | "meter"
>;

/** What a drop covers, fixed at its first try. Versions are row `_version`s, as decimal text. */
interface DropPlan {
  createdAt: string;
  version: number;
  /** INCREMENTAL: rows above this version (null: from the start). SNAPSHOT: null. */
  after: string | null;
  /** The highest row version when the drop was planned: the watermark once it lands. */
  upTo: string;
}

/** A failure that another try cannot fix (no credits, no entitlement): recorded, not retried. */
class FinalFailure extends Error {}

const KEY_COLUMN: Pick<Column, "name" | "type" | "nullable"> = {
  name: "_key",
  type: "STRING",
  nullable: false,
};
const DELETED_COLUMN: Pick<Column, "name" | "type" | "nullable"> = {
  name: "_deleted",
  type: "BOOLEAN",
  nullable: false,
};

export class DropDispatcher {
  private readonly outcomes: DeliveryOutcomes;
  private readonly metering: Metering;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: DeliverySecrets,
    private readonly reader: RecordsReader,
    ledger: Ledger,
    /** Drops show in usage reports as the operation "delivery", beside the reads. */
    usage: Pick<UsageRecorder, "record">,
    private readonly routing: DeliveryRouting,
    events: EventBus,
    private readonly jobs: JobQueue,
    private readonly settings: DropSettings,
    private readonly log: Pick<Logger, "info" | "warn">,
    private readonly now: () => Date = () => new Date(),
    private readonly random: () => number = Math.random,
  ) {
    this.outcomes = new DeliveryOutcomes(prisma, events, log, settings.disableAfter);
    this.metering = new Metering(ledger, usage);
  }

  /**
   * Queues a drop of the delivery; returns its id, or null when one is already waiting (it will
   * carry everything this one would have).
   */
  async enqueue(deliveryId: string): Promise<string | null> {
    const dropId = uuidv7(this.now().getTime());
    const job: DropJob = { deliveryId, dropId, attempt: 1, firstAttempt: 1 };
    const sent = await this.jobs.send(DROP_QUEUE, job, { singletonKey: deliveryId });
    return sent === null ? null : dropId;
  }

  /** Creates, replaces or removes the delivery's cron schedule to match its settings. */
  async syncSchedule(delivery: Delivery, deleted = false): Promise<void> {
    if (delivery.kind === "WEBHOOK") return;
    if (!deleted && delivery.status === "ACTIVE" && delivery.trigger === "SCHEDULE" && delivery.schedule) {
      const tick: DropTick = { deliveryId: delivery.id };
      await this.jobs.schedule(DROP_SCHEDULE_QUEUE, delivery.id, delivery.schedule, tick);
    } else {
      await this.jobs.unschedule(DROP_SCHEDULE_QUEUE, delivery.id);
    }
  }

  /** After a pause or a disable: a drop whose last try failed starts a new round of tries now. */
  async resumePending(deliveryId: string): Promise<void> {
    const last = await this.prisma.deliveryAttempt.findFirst({
      where: { deliveryId, eventType: DROP_EVENT },
      orderBy: { id: "desc" },
      select: { eventId: true, attempt: true, status: true, nextAttemptAt: true },
    });
    if (last?.status !== "FAILED" || last.nextAttemptAt === null) return;
    const next = last.attempt + 1;
    const job: DropJob = { deliveryId, dropId: last.eventId, attempt: next, firstAttempt: next };
    await this.jobs.send(DROP_QUEUE, job, { singletonKey: deliveryId });
  }

  job(): JobDefinition<DropJob> {
    return {
      queue: DROP_QUEUE,
      // One active and one waiting job per delivery (singletonKey): drops of a delivery never
      // overlap, and triggers that arrive while one waits fold into it.
      options: {
        policy: "stately",
        retryLimit: 3,
        retryDelay: 10,
        retryBackoff: true,
        expireInSeconds: 3600,
      },
      deadLetter: true,
      work: { pollingIntervalSeconds: 0.5, localConcurrency: 2 },
      handle: (data) => this.drop(data),
    };
  }

  /** The cron tick of a SCHEDULE delivery. */
  scheduleJob(): JobDefinition<DropTick> {
    return {
      queue: DROP_SCHEDULE_QUEUE,
      options: { retryLimit: 3, retryDelay: 5, expireInSeconds: 60 },
      work: { pollingIntervalSeconds: 2 },
      handle: (data) => this.tick(data),
    };
  }

  async tick({ deliveryId }: DropTick): Promise<void> {
    const delivery = await this.prisma.delivery.findUnique({ where: { id: deliveryId } });
    if (!delivery || delivery.status !== "ACTIVE" || delivery.trigger !== "SCHEDULE") return;
    await this.enqueue(deliveryId);
  }

  /** One try of one drop. */
  async drop(job: DropJob): Promise<void> {
    const { deliveryId, dropId, attempt } = job;
    const delivery = await this.prisma.delivery.findUnique({ where: { id: deliveryId } });
    if (!delivery || delivery.kind === "WEBHOOK") return;
    if (delivery.status !== "ACTIVE") {
      // resumeDelivery starts a drop still owed again.
      this.log.info({ deliveryId, dropId, status: delivery.status }, "drop held: delivery not active");
      return;
    }
    const started = this.now();
    let attemptId: string;
    try {
      ({ id: attemptId } = await this.prisma.deliveryAttempt.create({
        data: {
          deliveryId,
          eventId: dropId,
          eventType: DROP_EVENT,
          attempt,
          status: "PENDING",
          createdAt: started,
        },
        select: { id: true },
      }));
    } catch (error) {
      if (isUniqueViolation(error)) return; // this try was made already
      throw error;
    }
    try {
      await this.attempt(job, delivery, attemptId, started);
    } catch (error) {
      // Give the try back, so that pg-boss's retry of this job can make it.
      await this.prisma.deliveryAttempt.deleteMany({ where: { id: attemptId, status: "PENDING" } });
      throw error;
    }
  }

  private async attempt(job: DropJob, delivery: Delivery, attemptId: string, started: Date) {
    const clock = performance.now();
    let landed: { plan: DropPlan; receipt: DropReceipt; rows: number; credits: bigint } | null = null;
    let error: string | null = null;
    let final = false;
    try {
      landed = await this.perform(delivery, job.dropId, started);
    } catch (failure) {
      error = describe(failure);
      final = failure instanceof FinalFailure;
    }
    const durationMs = Math.round(performance.now() - clock);
    const triesMade = job.attempt - job.firstAttempt + 1;
    const delay =
      landed || final
        ? null
        : nextRetryDelay(this.settings.retrySchedule, triesMade, this.settings.jitter, this.random);
    const status: DeliveryAttemptStatus & TryOutcome = landed
      ? "SUCCEEDED"
      : delay === null && !final
        ? "DEAD"
        : "FAILED";
    const nextAttemptAt = delay === null ? null : new Date(this.now().getTime() + delay);
    let superseded = false;
    await this.prisma.$transaction(async (tx) => {
      await tx.deliveryAttempt.update({
        where: { id: attemptId },
        data: {
          status,
          durationMs,
          error,
          nextAttemptAt,
          responseExcerpt: landed
            ? JSON.stringify({
                manifest: landed.receipt.manifestLocation,
                rowCount: landed.receipt.manifest.rowCount,
                files: landed.receipt.manifest.files.length,
                bytes: landed.receipt.bytes,
                credits: Number(landed.credits),
              })
            : null,
        },
      });
      if (landed) {
        await tx.delivery.update({
          where: { id: delivery.id },
          data: { watermark: landed.plan.upTo, lastDeliveredVersion: landed.plan.version },
        });
      }
      if (nextAttemptAt) {
        const next: DropJob = { ...job, attempt: job.attempt + 1 };
        const sent = await this.jobs.send(DROP_QUEUE, next, {
          singletonKey: delivery.id,
          startAfter: nextAttemptAt,
          db: inTransaction(tx),
        });
        // A drop already waiting (a trigger that came meanwhile) starts from the same watermark,
        // so it carries these rows: this one is not tried again.
        superseded = sent === null;
        if (superseded) {
          await tx.deliveryAttempt.update({
            where: { id: attemptId },
            data: { nextAttemptAt: null, error: `${error}; not retried: the next drop carries these rows` },
          });
        }
      }
    });
    this.settings.meter?.tried(delivery.kind, status, durationMs);
    if (landed) {
      this.log.info(
        { deliveryId: delivery.id, dropId: job.dropId, rows: landed.rows, bytes: landed.receipt.bytes },
        "drop landed",
      );
      await this.outcomes.succeeded(delivery, attemptId);
      return;
    }
    this.log.info(
      { deliveryId: delivery.id, dropId: job.dropId, attempt: job.attempt, error, status },
      "drop try failed",
    );
    await this.outcomes.failed(delivery, {
      id: attemptId,
      eventId: job.dropId,
      dead: nextAttemptAt === null && !superseded,
      reason: final ? String(error) : `no success after ${triesMade} tries: ${error}`,
    });
  }

  private async perform(delivery: Delivery, dropId: string, started: Date) {
    const dataset = await this.prisma.dataset.findUniqueOrThrow({ where: { id: delivery.datasetId } });
    // Entitlement as of now: a purchase that lapsed since the drop was queued stops it.
    if ((await this.routing.entitled(dataset.id, [delivery])).length === 0) {
      throw new FinalFailure("FORBIDDEN: the account may no longer read this dataset");
    }
    const plan = await this.plan(delivery, dataset, dropId, started);
    const { target, connect } = await guardDropTarget(this.target(delivery), this.settings.policy);
    const incremental = delivery.mode === "INCREMENTAL";
    const batches = await this.reader.changes(ref(dataset), {
      after: plan.after === null ? null : BigInt(plan.after),
      upTo: incremental ? BigInt(plan.upTo) : null,
      tombstones: incremental,
    });
    let live = 0;
    const records = (async function* () {
      for await (const batch of batches) {
        for (const row of batch) {
          if (!incremental) yield { _key: row.key, ...row.values };
          // A deletion is its key alone: the tombstone's other values are placeholders.
          else if (row.deleted) yield { _key: row.key, _deleted: true };
          else {
            live++;
            yield { _key: row.key, ...row.values, _deleted: false };
          }
        }
      }
    })();
    const datasetColumns = ref(dataset).columns;
    const staged = await stageDrop(
      {
        dataset: { id: dataset.id, slug: dataset.slug },
        version: plan.version,
        format: delivery.format as "CSV" | "NDJSON" | "PARQUET",
        gzip: delivery.gzip,
        // Incremental drops carry deletions, whose values are all null.
        columns: incremental
          ? [KEY_COLUMN, ...datasetColumns.map((c) => ({ ...c, nullable: true })), DELETED_COLUMN]
          : [KEY_COLUMN, ...datasetColumns],
        mode: incremental ? "INCREMENTAL" : "FULL",
        createdAt: new Date(plan.createdAt),
        properties: { deliveryId: delivery.id, dropId, afterVersion: plan.after, upToVersion: plan.upTo },
      },
      records,
    );
    try {
      // Deletions carry no data: only the records are charged, as a read of them would be.
      const records = incremental ? live : staged.rowCount;
      const hold = await this.hold(delivery, dataset, dropId, records);
      let receipt: DropReceipt;
      try {
        receipt = await dropFiles(target, staged, connect);
      } catch (error) {
        await hold.finish(0);
        throw error;
      }
      await hold.finish(records);
      return { plan, receipt, rows: staged.rowCount, credits: hold.credits };
    } finally {
      await staged.dispose();
    }
  }

  /** The drop's plan: made and stored by its first try, read back by the others. */
  private async plan(delivery: Delivery, dataset: Dataset, dropId: string, started: Date): Promise<DropPlan> {
    const existing = await this.prisma.deliveryEvent.findUnique({
      where: { deliveryId_eventId: { deliveryId: delivery.id, eventId: dropId } },
    });
    if (existing) return JSON.parse(existing.body) as DropPlan;
    // Taken before any row is read: rows written meanwhile are above it, so the next drop has them.
    const upTo = await this.reader.maxVersion(ref(dataset));
    const plan: DropPlan = {
      createdAt: started.toISOString(),
      version: dataset.version,
      after: delivery.mode === "INCREMENTAL" ? delivery.watermark : null,
      upTo: String(upTo),
    };
    await this.prisma.deliveryEvent.createMany({
      data: [{ deliveryId: delivery.id, eventId: dropId, eventType: DROP_EVENT, body: JSON.stringify(plan) }],
      skipDuplicates: true,
    });
    return plan;
  }

  private target(delivery: Delivery): DropTarget {
    const { signingSecret: _, ...secrets } = this.secrets.open(delivery);
    return parseDropTarget(delivery.kind as "SFTP" | "S3", delivery.config, secrets);
  }

  /**
   * Holds what the drop's live records cost the delivery's account: a read of as many, through
   * the one metering path (the delivery is entitled: `perform` asked routing first). A balance
   * that cannot cover it fails the drop for good, with nothing sent or charged.
   */
  private async hold(delivery: Delivery, dataset: Dataset, dropId: string, records: number): Promise<Hold> {
    const decision = decideAccess({ accountId: delivery.accountId, admin: false }, dataset, true);
    if (decision.kind === "denied")
      throw new FinalFailure(`${decision.code}: the account may not read this dataset`);
    try {
      return await this.metering.hold(
        {
          accountId: delivery.accountId,
          apiKeyId: null,
          dataset: { id: dataset.id, slug: dataset.slug, accountId: dataset.accountId },
          decision,
          operation: "delivery",
          requestId: dropId,
        },
        records,
      );
    } catch (error) {
      if (error instanceof AppError && error.code === "INSUFFICIENT_CREDITS") {
        throw new FinalFailure(`INSUFFICIENT_CREDITS: ${error.message}; nothing was sent`);
      }
      throw error;
    }
  }
}

/**
 * The target if the outbound policy lets us contact it: an SFTP host must resolve only to allowed
 * addresses (and is connected to by the address checked, so DNS cannot change it in between); an
 * S3 endpoint is checked as a URL. AWS itself (no endpoint) is public.
 */
export async function guardDropTarget<T extends DropTarget>(
  target: T,
  policy: OutboundPolicy,
): Promise<{ target: T; connect: { lookup?: LookupFunction } }> {
  if (target.type === "SFTP") {
    const [address] = await checkHost(target.config.host, policy);
    return { target: { ...target, config: { ...target.config, host: address!.address } }, connect: {} };
  }
  if (target.config.endpoint === undefined) return { target, connect: {} };
  // The SDK resolves the endpoint itself: pin its lookup to the addresses just checked.
  const { addresses } = await checkTarget(target.config.endpoint, policy);
  return { target, connect: { lookup: pinnedLookup(addresses) } };
}

/** The settings field an outbound refusal is about, for messages at creation. */
export function guardedField(kind: Exclude<DeliveryKind, "WEBHOOK">): string {
  return kind === "SFTP" ? "config.host" : "config.endpoint";
}

/** A failure as the attempt records it: the code and message, never a credential. */
function describe(error: unknown): string {
  if (error instanceof FinalFailure) return error.message;
  if (error instanceof OutboundRefused) return `refused: ${error.message}`;
  if (error instanceof AppError) return `${error.code}: ${error.message}`.slice(0, 500);
  const err = error as Error & { code?: string };
  return `${err.code ?? err.name}: ${err.message}`.slice(0, 500);
}
