// What happened on the platform, told to whoever listens: subscriptions (Redis fan-out to every
// API process), webhooks and file drops (durable jobs). Producers (pipeline runs, pushes, record
// corrections, the ledger, deliveries) publish; they never know who listens.
import type { Logger } from "../observability/logger.js";
import { uuidv7 } from "../db/uuid.js";

interface EventBase<Type extends string, Data> {
  /** Unique per event; webhooks send it as `webhook-id` so receivers can deduplicate. */
  id: string;
  type: Type;
  /** ISO 8601, UTC. */
  occurredAt: string;
  data: Data;
}

/** A dataset's records changed and its version moved. Ids are raw database ids, not global ids. */
export type DatasetUpdated = EventBase<
  "dataset.updated",
  {
    datasetId: string;
    /** The publisher. */
    accountId: string;
    version: number;
    rowCount: number;
    /** Rows written (or deleted) by the change. */
    changedRows: number;
    cause: "PIPELINE_RUN" | "PUSH" | "CORRECTION";
    runId: string | null;
  }
>;

/** Progress or a status change of a run; frequent while a run goes (at most about once a second). */
export type PipelineRunUpdated = EventBase<
  "pipeline.run.updated",
  {
    runId: string;
    pipelineId: string;
    accountId: string;
    status: "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";
    progress: number | null;
    rowsRead: number;
    rowsWritten: number;
    rowsRejected: number;
  }
>;

/** A run ended; sent once per run, after pipeline.run.updated carried the final status. */
export type PipelineRunFinished = EventBase<
  "pipeline.run.succeeded" | "pipeline.run.failed",
  {
    runId: string;
    pipelineId: string;
    datasetId: string;
    accountId: string;
    rowsRead: number;
    rowsWritten: number;
    rowsRejected: number;
    error: string | null;
  }
>;

/** A balance fell below the threshold its account set. */
export type CreditsLow = EventBase<"credits.low", { accountId: string; balance: string; threshold: string }>;

/**
 * A MONTHLY purchase could not be renewed from credits (told once per term; the renewal job keeps
 * trying until the term ends, then the purchase lapses). Amounts are credits, as text.
 */
export type PurchaseRenewalFailed = EventBase<
  "purchase.renewal_failed",
  {
    accountId: string;
    purchaseId: string;
    datasetId: string;
    required: string;
    balance: string;
    /** When access ends unless credits arrive before. */
    expiresAt: string;
  }
>;

/** A delivery's state or an attempt changed (for deliveryUpdated subscriptions). */
export type DeliveryUpdated = EventBase<
  "delivery.updated",
  { deliveryId: string; accountId: string; status: string; attemptId: string | null }
>;

/** A delivery gave up on an event (retries exhausted) or was disabled. */
export type DeliveryFailed = EventBase<
  "delivery.failed",
  { deliveryId: string; accountId: string; eventId: string; reason: string; disabled: boolean }
>;

/**
 * A credential's standing changed before its time: an API key revoked or rotated, an account
 * suspended, its plan changed. API processes forget the account's remembered callers
 * (identity/identity-cache.ts) and re-check their open subscriptions at once.
 */
export type AccessRevoked = EventBase<
  "access.revoked",
  {
    /** The account whose access changed; "*" for every account (a plan's limits changed). */
    accountId: string;
    apiKeyId: string | null;
    reason: "KEY_REVOKED" | "KEY_ROTATED" | "ACCOUNT_SUSPENDED" | "PLAN_CHANGED" | "ROLE_CHANGED";
  }
>;

export type DomainEvent =
  | AccessRevoked
  | DatasetUpdated
  | PipelineRunUpdated
  | PipelineRunFinished
  | CreditsLow
  | PurchaseRenewalFailed
  | DeliveryUpdated
  | DeliveryFailed;

export type EventType = DomainEvent["type"];

/** Builds an event with a fresh id and the time; `now` is for tests. */
export function newEvent<E extends DomainEvent>(type: E["type"], data: E["data"], now = new Date()): E {
  return { id: uuidv7(now.getTime()), type, occurredAt: now.toISOString(), data } as E;
}

/** A listener. Durable sinks (webhooks, file drops) must persist before they resolve. */
export interface EventSink {
  readonly name: string;
  handle(event: DomainEvent): Promise<void>;
}

/**
 * Hands each event to every sink. A failing sink is logged and does not stop the others nor the
 * producer: the change itself has already been committed, and telling about it must not undo it.
 */
export class EventBus {
  readonly #sinks: EventSink[] = [];

  constructor(private readonly log: Pick<Logger, "error">) {}

  addSink(sink: EventSink): void {
    this.#sinks.push(sink);
  }

  async publish(event: DomainEvent): Promise<void> {
    const results = await Promise.allSettled(this.#sinks.map((sink) => sink.handle(event)));
    results.forEach((result, i) => {
      if (result.status === "rejected") {
        this.log.error(
          { err: result.reason, sink: this.#sinks[i]!.name, eventId: event.id, eventType: event.type },
          "event sink failed",
        );
      }
    });
  }
}
