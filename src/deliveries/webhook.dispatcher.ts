// Webhooks from event to receiver. For each delivery an event goes to (delivery.sink.ts) it stores
// the event's body once (so every retry and redelivery sends the same bytes under the same
// webhook-id) before sending a job. The job handler POSTs, records every try as a
// DeliveryAttempt, and schedules the next try or gives up.
import { createHash } from "node:crypto";
import { isUniqueViolation } from "../db/prisma-errors.js";
import type { EventBus } from "../events/events.js";
import type {
  Delivery,
  DeliveryAttemptStatus,
  DeliveryEvent,
  PrismaClient,
} from "../generated/prisma/client.js";
import type { SendOptions } from "pg-boss";
import type { JobDefinition } from "../jobs/boss.js";
import type { JobQueue } from "../jobs/queue.js";
import { OutboundRefused, guardedFetch, type OutboundPolicy } from "../net/outbound.js";
import type { Logger } from "../observability/logger.js";
import type { DeliverySecrets } from "./delivery.secrets.js";
import { nextRetryDelay } from "./webhook.retry.js";
import { DeliveryOutcomes } from "./delivery.outcomes.js";
import { webhookHeaders } from "./webhook.signing.js";

export const WEBHOOK_QUEUE = "deliveries.webhook";

export interface WebhookJob {
  deliveryId: string;
  eventId: string;
  /** The try number to make (1 for the first). */
  attempt: number;
  /** Where this round of tries started: 1, or the attempt a redelivery or a resume began with. */
  firstAttempt: number;
}

export interface WebhookSettings {
  timeoutMs: number;
  /** Delays between tries, in ms; tries = length + 1. */
  retrySchedule: readonly number[];
  jitter: number;
  /** Failed tries in a row after which the endpoint is disabled. */
  disableAfter: number;
  concurrency: number;
  policy: OutboundPolicy;
}

/** Beyond the send timeout, how long a PENDING try waits before another job may take it over. */
const ABANDONED_AFTER_MS = 60_000;

/** pg-boss priority of the jobs a resume sends (others have 0; higher runs first). */
const RESUME_PRIORITY = 1;

/** Jobs one poller takes per fetch (worked one after the other). */
const WORK_BATCH = 4;

/** Response bytes kept on an attempt. */
export const EXCERPT_BYTES = 1024;

interface Outcome {
  httpStatus: number | null;
  excerpt: string | null;
  error: string | null;
}

export class WebhookDispatcher {
  private readonly outcomes: DeliveryOutcomes;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: DeliverySecrets,
    events: EventBus,
    private readonly jobs: JobQueue,
    private readonly settings: WebhookSettings,
    private readonly log: Pick<Logger, "info" | "warn">,
    private readonly now: () => Date = () => new Date(),
    private readonly random: () => number = Math.random,
  ) {
    this.outcomes = new DeliveryOutcomes(prisma, events, log, settings.disableAfter);
  }

  /**
   * Stores the event for the delivery and sends its first try. Idempotent per (delivery, event):
   * the first body stored is the one sent, and the job id is derived from the pair.
   */
  async enqueue(deliveryId: string, eventId: string, eventType: string, body: string): Promise<void> {
    // The event and its job commit together: a crash leaves both or neither.
    await this.prisma.$transaction(async (tx) => {
      await tx.deliveryEvent.createMany({
        data: [{ deliveryId, eventId, eventType, body }],
        skipDuplicates: true,
      });
      await this.sendJob({ deliveryId, eventId, attempt: 1, firstAttempt: 1 }, { deterministic: true, tx });
    });
  }

  /** Sends the event of `eventId` again, as a new round of tries, same webhook-id and body. */
  async redeliver(deliveryId: string, eventId: string): Promise<void> {
    const last = await this.prisma.deliveryAttempt.findFirst({
      where: { deliveryId, eventId },
      orderBy: { attempt: "desc" },
      select: { attempt: true },
    });
    const attempt = (last?.attempt ?? 0) + 1;
    await this.sendJob({ deliveryId, eventId, attempt, firstAttempt: attempt }, { deterministic: false });
  }

  /**
   * After a pause or a disable: every event still owed starts a new round now, oldest first.
   * Owed are the events whose last try FAILED (a retry came due while the endpoint was off) and
   * those never tried at all (accepted while the delivery was off, or whose first try found it
   * off). An event accepted for a delivery is held, never dropped, whatever its state.
   */
  async resumePending(deliveryId: string): Promise<number> {
    const owed = await this.prisma.$queryRaw<{ event_id: string; attempt: number | null }[]>`
      SELECT e.event_id, last.attempt
      FROM delivery_events e
      LEFT JOIN LATERAL (
        SELECT a.attempt, a.status FROM delivery_attempts a
        WHERE a.delivery_id = e.delivery_id AND a.event_id = e.event_id
        ORDER BY a.attempt DESC LIMIT 1) last ON true
      WHERE e.delivery_id = ${deliveryId}::uuid
        AND (last.status IS NULL OR last.status = 'FAILED')
      ORDER BY e.created_at, e.id`;
    for (const { event_id: eventId, attempt } of owed) {
      const next = (attempt ?? 0) + 1;
      // Ahead of jobs already queued (first tries of events held while paused): those find their
      // try claimed and stand down, so the receiver gets the events in the order they happened.
      await this.sendJob(
        { deliveryId, eventId, attempt: next, firstAttempt: next },
        { deterministic: false, priority: RESUME_PRIORITY },
      );
    }
    return owed.length;
  }

  /** The job definition the worker runs. */
  job(): JobDefinition<WebhookJob> {
    return {
      queue: WEBHOOK_QUEUE,
      // pg-boss retries only what our handler could not record (the database was down); the
      // receiver's failures are retried by our own schedule, recorded one attempt each.
      options: { retryLimit: 5, retryDelay: 5, retryBackoff: true, expireInSeconds: 120 },
      // Jobs that still fail keep their data in deliveries.webhook.dead, for inspection and redrive.
      deadLetter: true,
      // Each poller takes a few jobs at a time and, while its fetches come back full, fetches again
      // at once instead of waiting for the next poll: a backlog drains at full speed.
      work: {
        pollingIntervalSeconds: 0.5,
        batchSize: WORK_BATCH,
        burstWhenBatchFull: true,
        localConcurrency: this.settings.concurrency,
      },
      handle: (data) => this.send(data),
    };
  }

  /** One try of one event. */
  async send(job: WebhookJob): Promise<void> {
    const { deliveryId, eventId } = job;
    const delivery = await this.prisma.delivery.findUnique({ where: { id: deliveryId } });
    if (!delivery || delivery.kind !== "WEBHOOK") return;
    if (delivery.status !== "ACTIVE") {
      // Held: the event stays stored and resumeDelivery sends it (resumePending).
      this.log.info({ deliveryId, eventId, status: delivery.status }, "webhook held: delivery not active");
      return;
    }
    const stored = await this.prisma.deliveryEvent.findUnique({
      where: { deliveryId_eventId: { deliveryId, eventId } },
    });
    if (!stored) return;
    const started = this.now();
    const attemptId = await this.claim(job, stored.eventType, started);
    if (attemptId === null) return;
    try {
      await this.attempt(job, delivery, stored, attemptId, started);
    } catch (error) {
      // Give the try back, so that pg-boss's retry of this job can make it.
      await this.prisma.deliveryAttempt.deleteMany({ where: { id: attemptId, status: "PENDING" } });
      throw error;
    }
  }

  private async attempt(
    job: WebhookJob,
    delivery: Delivery,
    stored: DeliveryEvent,
    attemptId: string,
    started: Date,
  ): Promise<void> {
    const { deliveryId, eventId, attempt } = job;
    const clock = performance.now();
    const outcome = await this.post(delivery, stored.eventId, stored.body, started);
    const durationMs = Math.round(performance.now() - clock);
    const succeeded = outcome.httpStatus !== null && outcome.httpStatus >= 200 && outcome.httpStatus < 300;
    const triesMade = attempt - job.firstAttempt + 1;
    const delay = succeeded
      ? null
      : nextRetryDelay(this.settings.retrySchedule, triesMade, this.settings.jitter, this.random);
    const status: DeliveryAttemptStatus = succeeded ? "SUCCEEDED" : delay === null ? "DEAD" : "FAILED";
    const nextAttemptAt = delay === null ? null : new Date(this.now().getTime() + delay);
    // The outcome and the next try commit together, so a failed try is never left without one.
    await this.prisma.$transaction(async (tx) => {
      await tx.deliveryAttempt.update({
        where: { id: attemptId },
        data: {
          status,
          httpStatus: outcome.httpStatus,
          durationMs,
          responseExcerpt: outcome.excerpt,
          error: outcome.error,
          nextAttemptAt,
        },
      });
      if (nextAttemptAt) {
        await this.sendJob(
          { ...job, attempt: attempt + 1 },
          { deterministic: true, startAfter: nextAttemptAt, tx },
        );
      }
    });

    if (succeeded) {
      await this.outcomes.succeeded(delivery, attemptId);
      return;
    }
    this.log.info(
      { deliveryId, eventId, attempt, httpStatus: outcome.httpStatus, error: outcome.error, status },
      "webhook try failed",
    );
    await this.outcomes.failed(delivery, {
      id: attemptId,
      eventId,
      dead: status === "DEAD",
      reason: `no success after ${triesMade} tries: ${outcome.error}`,
    });
  }

  /**
   * Claims one try before it is made (a PENDING attempt, unique per delivery, event and number), so
   * two jobs for the same try (a retry and a resume racing) never both send. A claim left PENDING
   * by a process that died mid-send is taken over once that send cannot still be running.
   */
  private async claim(job: WebhookJob, eventType: string, now: Date): Promise<string | null> {
    const { deliveryId, eventId, attempt } = job;
    try {
      const row = await this.prisma.deliveryAttempt.create({
        data: { deliveryId, eventId, eventType, attempt, status: "PENDING", createdAt: now },
        select: { id: true },
      });
      return row.id;
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
    }
    const abandoned = new Date(now.getTime() - this.settings.timeoutMs - ABANDONED_AFTER_MS);
    const where = { deliveryId, eventId, attempt, status: "PENDING" as const, createdAt: { lt: abandoned } };
    const { count } = await this.prisma.deliveryAttempt.updateMany({ where, data: { createdAt: now } });
    if (count === 0) return null;
    const row = await this.prisma.deliveryAttempt.findUniqueOrThrow({
      where: { deliveryId_eventId_attempt: { deliveryId, eventId, attempt } },
      select: { id: true },
    });
    return row.id;
  }

  private async post(delivery: Delivery, eventId: string, body: string, now: Date): Promise<Outcome> {
    const config = delivery.config as { url: string; headers?: Record<string, string> };
    const stored = this.secrets.open(delivery);
    const headers = {
      ...config.headers,
      ...stored.headers,
      "content-type": "application/json",
      "user-agent": "Datahus-Webhooks/1",
      ...webhookHeaders(eventId, now, body, this.secrets.signingSecrets(delivery, now)),
    };
    try {
      const response = await guardedFetch(
        config.url,
        { method: "POST", headers, body },
        this.settings.policy,
        {
          timeoutMs: this.settings.timeoutMs,
        },
      );
      const excerpt = await readExcerpt(response.body);
      const { status } = response;
      const error =
        status >= 200 && status < 300
          ? null
          : status >= 300 && status < 400
            ? `answered ${status}; redirects are not followed`
            : `answered ${status}`;
      return { httpStatus: status, excerpt, error };
    } catch (error) {
      return { httpStatus: null, excerpt: null, error: this.describe(error) };
    }
  }

  private describe(error: unknown): string {
    if (error instanceof OutboundRefused) return `refused: ${error.message}`;
    const err = error as Error & { cause?: Error & { code?: string } };
    if (err.name === "TimeoutError" || err.cause?.name === "TimeoutError" || err.name === "AbortError") {
      return `no answer within ${this.settings.timeoutMs} ms`;
    }
    const cause = (err.cause ?? err) as Error & { code?: string };
    return `${cause.code ?? cause.name}: ${cause.message}`.slice(0, 500);
  }

  private async sendJob(
    job: WebhookJob,
    options: { deterministic: boolean; startAfter?: Date; tx?: Transaction; priority?: number },
  ): Promise<void> {
    await this.jobs.send(WEBHOOK_QUEUE, job, {
      ...(options.priority ? { priority: options.priority } : {}),
      ...(options.deterministic ? { id: jobId(job) } : {}),
      ...(options.startAfter ? { startAfter: options.startAfter } : {}),
      ...(options.tx ? { db: inTransaction(options.tx) } : {}),
    });
  }
}

export type Transaction = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];

/** pg-boss's database interface over a Prisma transaction, so a job is inserted inside it. */
export function inTransaction(tx: Transaction): NonNullable<SendOptions["db"]> {
  return {
    executeSql: async (text: string, values: unknown[] = []) => ({
      rows: await tx.$queryRawUnsafe<unknown[]>(text, ...values),
    }),
  };
}

/** A UUID derived from the try, so sending the same try twice makes one job (pg-boss keys on id). */
function jobId({ deliveryId, eventId, attempt }: WebhookJob): string {
  const hex = createHash("sha256").update(`${deliveryId}:${eventId}:${attempt}`).digest("hex");
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** The first bytes of a response, the rest discarded. */
async function readExcerpt(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return "";
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString("utf8");
}
