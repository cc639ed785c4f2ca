// Webhooks from event to receiver. For each delivery an event goes to (delivery.sink.ts) it stores
// the event's body once (so every retry and redelivery sends the same bytes under the same
// webhook-id) and queues its first try. Each try is POSTed and recorded as a DeliveryAttempt, and
// the next try is scheduled or the event given up. Both ends work in batches: the events of many
// publishes are stored and queued in one statement, and the tries of one claim share their
// lookups, claims and success updates; sends go over keep-alive connections pinned to the
// receiver's checked addresses (net/outbound.ts `PinnedAgents`).
//
// First tries, nearly all the traffic, do not go through pg-boss: a pg-boss job cost an insert, a
// fetch and a completion in pg-boss's generic SQL on top of our own rows, the largest share of
// the worker's and PostgreSQL's CPU per delivery. They wait in webhook_first_tries, which workers
// claim in batches with SKIP LOCKED (`sendQueued`), woken by a NOTIFY from the statement that
// queued them (webhook.wake.ts). A claim is a lease: a try whose worker died is claimed again
// once its send cannot still be running, and taken over as any abandoned try is. Retries (due
// later), redeliveries and resumes' backlogs are pg-boss jobs, as they were.
import { createHash } from "node:crypto";
import type { EventBus } from "../events/events.js";
import {
  Prisma,
  type Delivery,
  type DeliveryAttemptStatus,
  type DeliveryEvent,
  type PrismaClient,
} from "../generated/prisma/client.js";
import type { SendOptions } from "pg-boss";
import type { JobDefinition } from "../jobs/boss.js";
import type { JobQueue } from "../jobs/queue.js";
import { OutboundRefused, PinnedAgents, type OutboundPolicy } from "../net/outbound.js";
import type { Logger } from "../observability/logger.js";
import type { DeliverySecrets } from "./delivery.secrets.js";
import { nextRetryDelay } from "./webhook.retry.js";
import { DeliveryOutcomes } from "./delivery.outcomes.js";
import { webhookHeaders } from "./webhook.signing.js";
import type { DeliveryMeter, QueueDepth } from "../observability/worker-metrics.js";
import { uuidv7, uuidv7InStatement } from "../db/uuid.js";
import { listen, Pump } from "./webhook.wake.js";

export const WEBHOOK_QUEUE = "deliveries.webhook";

export interface WebhookJob {
  deliveryId: string;
  eventId: string;
  /** The try number to make (1 for the first). */
  attempt: number;
  /** Where this round of tries started: 1, or the attempt a redelivery or a resume began with. */
  firstAttempt: number;
  /**
   * A resume's backlog, sent one event at a time in acceptance order: the stored event
   * (`delivery_events.id`) it ends with. Once this try is made the next event owed is sent.
   */
  backlogEnd?: string;
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
  /** Told of every try once recorded (the worker's /metrics). */
  meter?: DeliveryMeter;
  /** Where a worker LISTENs for queued first tries; without it, it only polls. */
  listenUrl?: string;
  /** How long a worker waits between claims of first tries when no NOTIFY comes. @default 500 */
  pollMs?: number;
}

/** Beyond the send timeout, how long a PENDING try waits before another job may take it over. */
const ABANDONED_AFTER_MS = 60_000;

/** pg-boss priority of the jobs a resume sends (others have 0; higher runs first). */
const RESUME_PRIORITY = 1;

/** Jobs one poller takes per fetch, sent together (up to the receiver's connections at once). */
const WORK_BATCH = 50;

/** First tries one claim takes, sent together (as WORK_BATCH). */
export const CLAIM_BATCH = 50;

/** How /metrics names the first tries waiting in webhook_first_tries. */
export const FIRST_TRIES_QUEUE = `${WEBHOOK_QUEUE}.first-tries`;

/** The NOTIFY channel that tells workers first tries were queued. */
export const WAKE_CHANNEL = "datahus_webhook_tries";

/** Response bytes kept on an attempt. */
export const EXCERPT_BYTES = 1024;

interface Outcome {
  httpStatus: number | null;
  excerpt: string | null;
  error: string | null;
}

/** One event stored for one delivery, to be sent. */
export interface WebhookEvent {
  deliveryId: string;
  eventId: string;
  eventType: string;
  body: string;
}

/** A stored event, as a send needs it. */
type StoredEvent = Pick<DeliveryEvent, "deliveryId" | "eventId" | "eventType" | "body">;

/** A try claimed for sending, with what it needs. */
interface Claimed {
  job: WebhookJob;
  delivery: Delivery;
  stored: StoredEvent;
  attemptId: string;
  started: Date;
  /** A first try claimed from webhook_first_tries: its row there, removed once recorded. */
  queued?: string;
}

/** A first try as its claim returns it (`sendQueued`). */
interface QueuedTry extends StoredEvent {
  storedId: string;
  /** Its delivery is an active webhook: the try is claimed (or was already). */
  open: boolean;
  /** The PENDING attempt inserted; null when the try was claimed before. */
  attemptId: string | null;
}

/** A try made: its outcome, still to be recorded. */
interface Made extends Claimed {
  outcome: Outcome;
  durationMs: number;
}

const tryKey = ({ deliveryId, eventId, attempt }: Omit<WebhookJob, "firstAttempt">) =>
  `${deliveryId} ${eventId} ${attempt}`;
const eventKey = (deliveryId: string, eventId: string) => `${deliveryId} ${eventId}`;

export class WebhookDispatcher {
  private readonly outcomes: DeliveryOutcomes;
  private readonly agents: PinnedAgents;
  private running?: { pump: Pump; unlisten: () => Promise<void> };

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
    this.agents = new PinnedAgents(settings.policy, { connections: settings.concurrency });
  }

  /** Stops sending queued first tries (once the current ones are recorded), closes the connections. */
  async close(): Promise<void> {
    const running = this.running;
    this.running = undefined;
    if (running) {
      await running.unlisten();
      await running.pump.stop();
    }
    await this.agents.close();
  }

  /**
   * In a worker: sends queued first tries until `close`, in two loops of CLAIM_BATCH (as pg-boss
   * works the job queue), each woken by a NOTIFY when tries are queued.
   */
  async start(log: Pick<Logger, "warn" | "error">): Promise<void> {
    if (this.running) return;
    const options = { loops: 2, batch: CLAIM_BATCH, pollMs: this.settings.pollMs ?? 500 };
    const pump = new Pump((limit) => this.sendQueued(limit), options, log);
    const { listenUrl } = this.settings;
    const unlisten = listenUrl ? await listen(listenUrl, WAKE_CHANNEL, pump.wake, log) : async () => {};
    this.running = { pump, unlisten };
    pump.start();
  }

  /**
   * Stores the event for the delivery and queues its first try. Idempotent per (delivery, event):
   * the first body stored is the one sent, and an event stored before is not queued again.
   */
  async enqueue(deliveryId: string, eventId: string, eventType: string, body: string): Promise<void> {
    await this.enqueueMany([{ deliveryId, eventId, eventType, body }]);
  }

  /**
   * `enqueue` for many events at once, in one statement: the events stored, the first tries of
   * the new ones queued, the workers woken (NOTIFY, sent at commit). A crash leaves all or none.
   */
  async enqueueMany(events: readonly WebhookEvent[]): Promise<void> {
    if (events.length === 0) return;
    // Raw SQL: Prisma's query compiler took a quarter of the webhook bench's CPU. Ids are made in
    // the statement from the clock, row by row: a later batch's events sort after an earlier
    // one's even within one millisecond of created_at (a resume sends them in that order).
    // The events of a paused or disabled delivery are only stored: its resume sends them, in
    // order. The share lock, taken in the same statement, orders this against a resume's status
    // change, which then sees them. An event stored before (the same delivery and event id) is
    // not queued again.
    const ids = [...new Set(events.map((e) => e.deliveryId))];
    await this.prisma.$queryRaw`
      WITH stored AS (
        INSERT INTO delivery_events (id, delivery_id, event_id, event_type, body)
        SELECT ${uuidv7InStatement(Prisma.sql`extract(epoch FROM clock_timestamp()) * 1000`)}, e.*
          FROM unnest(${events.map((e) => e.deliveryId)}::uuid[], ${events.map((e) => e.eventId)}::text[],
                      ${events.map((e) => e.eventType)}::text[], ${events.map((e) => e.body)}::text[])
               AS e(delivery_id, event_id, event_type, body)
        ON CONFLICT (delivery_id, event_id) DO NOTHING
        RETURNING id, delivery_id),
      states AS MATERIALIZED (
        SELECT id, status FROM deliveries WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR SHARE),
      queued AS (
        INSERT INTO webhook_first_tries (stored_event_id)
        SELECT s.id FROM stored s JOIN states d ON d.id = s.delivery_id WHERE d.status = 'ACTIVE'
        RETURNING 1)
      SELECT pg_notify(${WAKE_CHANNEL}, '')::text AS woken WHERE EXISTS (SELECT FROM queued)`;
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
   * After a pause or a disable: every event still owed starts a new round, one after another in
   * the order they were accepted (the backlog). Owed are the events whose last try FAILED (a retry
   * came due while the endpoint was off) and those never tried at all (accepted while the delivery
   * was off, or whose first try found it off). An event accepted for a delivery is held, never
   * dropped, whatever its state. A backlog event that fails goes on with its own retries and does
   * not hold up the ones after it.
   */
  async resumePending(deliveryId: string): Promise<number> {
    const owed = await this.owed(deliveryId);
    if (owed.length === 0) return 0;
    // The tries already queued for these events (first tries of events held while paused, retries
    // due later) stand down: the backlog sends them, in order.
    const queued = owed.map(({ eventId, attempt }) =>
      jobId({ deliveryId, eventId, attempt: (attempt ?? 0) + 1 }),
    );
    await this.jobs.cancel(WEBHOOK_QUEUE, queued);
    await this.prisma.$executeRaw`
      DELETE FROM webhook_first_tries q USING delivery_events e
       WHERE q.stored_event_id = e.id AND e.delivery_id = ${deliveryId}::uuid AND q.lease_until IS NULL`;
    await this.sendBacklog(deliveryId, owed[0]!, owed.at(-1)!.id);
    return owed.length;
  }

  /**
   * The events of the delivery still owed, oldest first, each with its last try's number; with
   * `after`, only the next one after `after.eventId`, up to the backlog's end.
   */
  private async owed(deliveryId: string, after?: { eventId: string; end: string }) {
    const range = after
      ? Prisma.sql`AND (e.created_at, e.id) > (SELECT created_at, id FROM delivery_events
                     WHERE delivery_id = ${deliveryId}::uuid AND event_id = ${after.eventId})
                   AND (e.created_at, e.id) <= (SELECT created_at, id FROM delivery_events
                     WHERE id = ${after.end}::uuid)`
      : Prisma.empty;
    return this.prisma.$queryRaw<{ id: string; eventId: string; attempt: number | null }[]>`
      SELECT e.id, e.event_id AS "eventId", last.attempt
      FROM delivery_events e
      LEFT JOIN LATERAL (
        SELECT a.attempt, a.status FROM delivery_attempts a
        WHERE a.delivery_id = e.delivery_id AND a.event_id = e.event_id
        ORDER BY a.attempt DESC LIMIT 1) last ON true
      WHERE e.delivery_id = ${deliveryId}::uuid
        AND (last.status IS NULL OR last.status = 'FAILED') ${range}
      ORDER BY e.created_at, e.id ${after ? Prisma.sql`LIMIT 1` : Prisma.empty}`;
  }

  /** Sends the backlog's next event, a new round of tries, ahead of other queued jobs. */
  private async sendBacklog(
    deliveryId: string,
    next: { eventId: string; attempt: number | null },
    end: string,
  ) {
    const attempt = (next.attempt ?? 0) + 1;
    await this.sendJob(
      { deliveryId, eventId: next.eventId, attempt, firstAttempt: attempt, backlogEnd: end },
      { deterministic: false, priority: RESUME_PRIORITY },
    );
  }

  /**
   * The job definition the worker runs: pg-boss jobs for retries, redeliveries and backlogs, and
   * (`start`) the loops that send queued first tries.
   */
  job(): JobDefinition<WebhookJob> {
    return {
      queue: WEBHOOK_QUEUE,
      // pg-boss retries only what our handler could not record (the database was down); the
      // receiver's failures are retried by our own schedule, recorded one attempt each.
      // `notify`: a new job wakes the workers at once (pg-boss LISTEN/NOTIFY), the poll is a backstop.
      options: { retryLimit: 5, retryDelay: 5, retryBackoff: true, expireInSeconds: 120, notify: true },
      // Jobs that still fail keep their data in deliveries.webhook.dead, for inspection and redrive.
      deadLetter: true,
      // Each poller takes a batch of jobs and, while its fetches come back full, fetches again at
      // once instead of waiting for the next poll: a backlog drains at full speed. Two pollers keep
      // one batch sending while the other is fetched and recorded.
      // The poll stays at 0.5 s with NOTIFY on (pg-boss would relax it to 30 s): retries due later
      // are not announced when they come due.
      work: {
        pollingIntervalSeconds: 0.5,
        notifyPollingIntervalSeconds: 0.5,
        batchSize: WORK_BATCH,
        burstWhenBatchFull: true,
        localConcurrency: 2,
      },
      handle: (data) => this.send(data),
      handleBatch: (jobs) => this.sendMany(jobs.map((job) => job.data)),
      start: (log) => this.start(log),
    };
  }

  /** One try of one event. */
  async send(job: WebhookJob): Promise<void> {
    await this.sendMany([job]);
  }

  /**
   * One try of each job's event. The lookups, the claims and the successes' records are one query
   * each for the whole batch; the sends run at once (the agent bounds the connections per
   * receiver); failed tries are recorded one by one, each with its next try.
   */
  async sendMany(jobs: readonly WebhookJob[]): Promise<void> {
    const unique = [...new Map(jobs.map((job) => [tryKey(job), job])).values()];
    const ready = await this.ready(unique);
    await this.makeAll(await this.claimMany(ready, this.now()));
    // A backlog goes on once its try is made, whatever the outcome (or made by another job); it
    // stops where the delivery is off again, and the next resume starts it over.
    for (const { job } of ready) {
      if (!job.backlogEnd) continue;
      const [next] = await this.owed(job.deliveryId, { eventId: job.eventId, end: job.backlogEnd });
      if (next) await this.sendBacklog(job.deliveryId, next, job.backlogEnd);
    }
  }

  /**
   * Claims up to `limit` queued first tries (webhook_first_tries), oldest first, makes them and
   * records them. Returns how many were taken off the queue: `limit` means more may be waiting.
   */
  async sendQueued(limit: number = CLAIM_BATCH): Promise<number> {
    const now = this.now();
    const rows = await this.claimQueued(limit, now);
    if (rows.length === 0) return 0;
    const ids = [...new Set(rows.filter((r) => r.open).map((r) => r.deliveryId))];
    const deliveries = new Map(
      (ids.length ? await this.prisma.delivery.findMany({ where: { id: { in: ids } } }) : []).map((d) => [
        d.id,
        d,
      ]),
    );
    const claimed: Claimed[] = [];
    const settled: string[] = [];
    for (const row of rows) {
      const { storedId, open, attemptId, ...stored } = row;
      const job = { deliveryId: row.deliveryId, eventId: row.eventId, attempt: 1, firstAttempt: 1 };
      const delivery = deliveries.get(row.deliveryId);
      if (!open || !delivery) {
        // resumeDelivery sends it with the rest of what is owed, in order.
        this.log.info(
          { deliveryId: job.deliveryId, eventId: job.eventId },
          "webhook held: delivery not active",
        );
        settled.push(storedId);
        continue;
      }
      // Claimed before: by a worker that died (its lease ran out), or by a job racing this one.
      const id = attemptId ?? (await this.takeOver(job, now));
      if (id === null) settled.push(storedId);
      else claimed.push({ job, delivery, stored, attemptId: id, started: now, queued: storedId });
    }
    if (settled.length)
      await this.prisma.$executeRaw`
        DELETE FROM webhook_first_tries WHERE stored_event_id = ANY(${settled}::uuid[])`;
    await this.makeAll(claimed);
    return rows.length;
  }

  /**
   * The first tries queued (waiting, or leased by a worker), as a queue's depth for the worker's
   * /metrics beside pg-boss's queues: the first tries of a backlog wait here, not in pg-boss.
   */
  async firstTriesDepth(): Promise<QueueDepth> {
    const [row] = await this.prisma.$queryRaw<{ queued: number; active: number }[]>`
      SELECT count(*) FILTER (WHERE lease_until IS NULL OR lease_until < ${this.now()})::int AS queued,
             count(*) FILTER (WHERE lease_until >= ${this.now()})::int AS active
        FROM webhook_first_tries`;
    const { queued, active } = row!;
    return {
      name: FIRST_TRIES_QUEUE,
      queuedCount: queued,
      activeCount: active,
      deferredCount: 0,
      failedCount: 0,
    };
  }

  /**
   * Leases up to `limit` queued first tries and, in the same statement, claims the tries (a
   * PENDING attempt each) of those whose delivery is an active webhook. The lease runs for as
   * long as a send may; a worker that dies leaves the row to be claimed again after it.
   */
  private async claimQueued(limit: number, now: Date): Promise<QueuedTry[]> {
    const leaseUntil = new Date(now.getTime() + this.settings.timeoutMs + ABANDONED_AFTER_MS);
    return this.prisma.$queryRaw<QueuedTry[]>`
      WITH picked AS (
        SELECT stored_event_id FROM webhook_first_tries
         WHERE lease_until IS NULL OR lease_until < ${now}
         ORDER BY stored_event_id LIMIT ${limit} FOR UPDATE SKIP LOCKED),
      leased AS (
        UPDATE webhook_first_tries q SET lease_until = ${leaseUntil}
          FROM picked p WHERE q.stored_event_id = p.stored_event_id
        RETURNING q.stored_event_id),
      events AS MATERIALIZED (
        SELECT e.id, e.delivery_id, e.event_id, e.event_type, e.body,
               (d.kind = 'WEBHOOK' AND d.status = 'ACTIVE') AS open
          FROM leased l JOIN delivery_events e ON e.id = l.stored_event_id
          JOIN deliveries d ON d.id = e.delivery_id),
      claimed AS (
        INSERT INTO delivery_attempts (id, delivery_id, event_id, event_type, attempt, status, created_at)
        SELECT ${uuidv7InStatement(Prisma.sql`extract(epoch FROM clock_timestamp()) * 1000`)},
               delivery_id, event_id, event_type, 1, 'PENDING', ${now}
          FROM events WHERE open
        ON CONFLICT (delivery_id, event_id, attempt) DO NOTHING
        RETURNING id, delivery_id, event_id)
      SELECT e.id AS "storedId", e.delivery_id AS "deliveryId", e.event_id AS "eventId",
             e.event_type AS "eventType", e.body, e.open, c.id AS "attemptId"
        FROM events e LEFT JOIN claimed c USING (delivery_id, event_id)
       ORDER BY e.id`;
  }

  /**
   * Makes the claimed tries at once and records them. When they cannot be recorded, gives back
   * what was claimed (PENDING attempts, leases) so that the job's retry, or the next claim, makes
   * them again.
   */
  private async makeAll(claimed: readonly Claimed[]): Promise<void> {
    const made = await Promise.all(claimed.map((c) => this.make(c)));
    try {
      await this.recordSuccesses(made.filter((m) => succeeded(m.outcome)));
      await this.recordFailures(made.filter((m) => !succeeded(m.outcome)));
    } catch (error) {
      const ids = made.map((m) => m.attemptId);
      const queued = queuedIds(made);
      await this.prisma.deliveryAttempt.deleteMany({ where: { id: { in: ids }, status: "PENDING" } });
      if (queued.length)
        await this.prisma.$executeRaw`
          UPDATE webhook_first_tries SET lease_until = NULL WHERE stored_event_id = ANY(${queued}::uuid[])`;
      throw error;
    }
  }

  /** The jobs whose delivery is an active webhook and whose event is stored, with both. */
  private async ready(jobs: readonly WebhookJob[]) {
    if (jobs.length === 0) return [];
    const deliveryIds = [...new Set(jobs.map((j) => j.deliveryId))];
    const [deliveries, stored] = await Promise.all([
      this.prisma.delivery.findMany({ where: { id: { in: deliveryIds } } }),
      this.prisma.$queryRaw<StoredEvent[]>`
        SELECT e.delivery_id AS "deliveryId", e.event_id AS "eventId", e.event_type AS "eventType", e.body
          FROM delivery_events e
          JOIN unnest(${jobs.map((j) => j.deliveryId)}::uuid[], ${jobs.map((j) => j.eventId)}::text[])
               AS j(delivery_id, event_id) USING (delivery_id, event_id)`,
    ]);
    const byId = new Map(deliveries.map((d) => [d.id, d]));
    const events = new Map(stored.map((e) => [eventKey(e.deliveryId, e.eventId), e]));
    return jobs.flatMap((job) => {
      const delivery = byId.get(job.deliveryId);
      if (!delivery || delivery.kind !== "WEBHOOK") return [];
      if (delivery.status !== "ACTIVE") {
        // resumeDelivery starts the events still owed again.
        this.log.info(
          { deliveryId: job.deliveryId, eventId: job.eventId, status: delivery.status },
          "webhook held: delivery not active",
        );
        return [];
      }
      const event = events.get(eventKey(job.deliveryId, job.eventId));
      return event ? [{ job, delivery, stored: event }] : [];
    });
  }

  /** Claims every try in one insert; a try already claimed goes through `takeOver`. */
  private async claimMany(
    ready: { job: WebhookJob; delivery: Delivery; stored: StoredEvent }[],
    now: Date,
  ): Promise<Claimed[]> {
    if (ready.length === 0) return [];
    const rows = await this.prisma.$queryRaw<
      { id: string; deliveryId: string; eventId: string; attempt: number }[]
    >`
      INSERT INTO delivery_attempts (id, delivery_id, event_id, event_type, attempt, status, created_at)
      SELECT t.*, 'PENDING', ${now}
        FROM unnest(${ready.map(() => uuidv7(now.getTime()))}::uuid[], ${ready.map((r) => r.job.deliveryId)}::uuid[],
                    ${ready.map((r) => r.job.eventId)}::text[], ${ready.map((r) => r.stored.eventType)}::text[],
                    ${ready.map((r) => r.job.attempt)}::int[])
             AS t(id, delivery_id, event_id, event_type, attempt)
      ON CONFLICT (delivery_id, event_id, attempt) DO NOTHING
      RETURNING id, delivery_id AS "deliveryId", event_id AS "eventId", attempt`;
    const ids = new Map(rows.map((r) => [tryKey(r), r.id]));
    const claimed: Claimed[] = [];
    for (const r of ready) {
      const attemptId = ids.get(tryKey(r.job)) ?? (await this.takeOver(r.job, now));
      if (attemptId !== null) claimed.push({ ...r, attemptId, started: now });
    }
    return claimed;
  }

  private async make(claimed: Claimed): Promise<Made> {
    const clock = performance.now();
    const { delivery, stored, started } = claimed;
    const outcome = await this.post(delivery, stored.eventId, stored.body, started);
    return { ...claimed, outcome, durationMs: Math.round(performance.now() - clock) };
  }

  /**
   * The successful tries, recorded in one statement; then each delivery's failure count is reset
   * and its account told once per batch (delivery.updated with the latest attempt).
   */
  private async recordSuccesses(made: readonly Made[]): Promise<void> {
    if (made.length === 0) return;
    const queued = queuedIds(made);
    await this.prisma.$executeRaw`
      WITH done AS (DELETE FROM webhook_first_tries WHERE stored_event_id = ANY(${queued}::uuid[]))
      UPDATE delivery_attempts AS a
         SET status = 'SUCCEEDED', http_status = t.http_status, duration_ms = t.duration_ms,
             response_excerpt = t.excerpt, error = NULL, next_attempt_at = NULL
        FROM unnest(${made.map((m) => m.attemptId)}::uuid[], ${made.map((m) => m.outcome.httpStatus)}::int[],
                    ${made.map((m) => m.durationMs)}::int[], ${made.map((m) => m.outcome.excerpt)}::text[])
             AS t(id, http_status, duration_ms, excerpt)
       WHERE a.id = t.id`;
    for (const m of made) this.settings.meter?.tried("WEBHOOK", "SUCCEEDED", m.durationMs);
    const latest = new Map(made.map((m) => [m.delivery.id, m]));
    for (const m of latest.values()) await this.outcomes.succeeded(m.delivery, m.attemptId);
  }

  /**
   * The failed tries: each recorded with its next try (or DEAD) in one transaction, so a failed
   * try is never left without one and the batch's retries are all in place together; then each
   * failure is counted (which may disable the endpoint) and told.
   */
  private async recordFailures(made: readonly Made[]): Promise<void> {
    if (made.length === 0) return;
    const decided = made.map((m) => {
      const triesMade = m.job.attempt - m.job.firstAttempt + 1;
      const delay = nextRetryDelay(this.settings.retrySchedule, triesMade, this.settings.jitter, this.random);
      const status: DeliveryAttemptStatus = delay === null ? "DEAD" : "FAILED";
      const nextAttemptAt = delay === null ? null : new Date(this.now().getTime() + delay);
      return { ...m, triesMade, status, nextAttemptAt };
    });
    const queued = queuedIds(made);
    await this.prisma.$transaction(async (tx) => {
      if (queued.length)
        await tx.$executeRaw`DELETE FROM webhook_first_tries WHERE stored_event_id = ANY(${queued}::uuid[])`;
      for (const { attemptId, status, outcome, durationMs, nextAttemptAt } of decided) {
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
      }
      const retries = decided.flatMap(({ job, nextAttemptAt }) => {
        if (!nextAttemptAt) return [];
        // A retry is on its own schedule, not part of a backlog.
        const { deliveryId, eventId, firstAttempt } = job;
        const data = { deliveryId, eventId, firstAttempt, attempt: job.attempt + 1 };
        return [{ id: jobId(data), data, startAfter: nextAttemptAt }];
      });
      await this.jobs.insert<WebhookJob>(WEBHOOK_QUEUE, retries, { db: inTransaction(tx) });
    });
    for (const m of decided)
      this.settings.meter?.tried("WEBHOOK", m.status === "DEAD" ? "DEAD" : "FAILED", m.durationMs);
    for (const { job, delivery, attemptId, outcome, status, triesMade } of decided) {
      const { deliveryId, eventId, attempt } = job;
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
  }

  /**
   * A try is claimed before it is made (a PENDING attempt, unique per delivery, event and number),
   * so two jobs for the same try (a retry and a resume racing) never both send. A claim left
   * PENDING by a process that died mid-send is taken over once that send cannot still be running.
   */
  private async takeOver(job: WebhookJob, now: Date): Promise<string | null> {
    const { deliveryId, eventId, attempt } = job;
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
      const { status, excerpt } = await this.agents.post(
        config.url,
        { headers, body },
        { timeoutMs: this.settings.timeoutMs, excerptBytes: EXCERPT_BYTES },
      );
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
function jobId({ deliveryId, eventId, attempt }: Omit<WebhookJob, "firstAttempt">): string {
  const hex = createHash("sha256").update(`${deliveryId}:${eventId}:${attempt}`).digest("hex");
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

const succeeded = (outcome: Outcome) =>
  outcome.httpStatus !== null && outcome.httpStatus >= 200 && outcome.httpStatus < 300;

/** The queue rows (webhook_first_tries) of the tries made that were first tries. */
function queuedIds(made: readonly Made[]): string[] {
  return made.flatMap((m) => (m.queued ? [m.queued] : []));
}
