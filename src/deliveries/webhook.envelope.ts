// What a webhook carries: `{ "type", "timestamp", "data" }` (the Standard Webhooks envelope), the
// data in the API's terms (global ids, as `node(id:)` takes them) and only what the receiving
// account may know: a buyer hears that a dataset changed, not which run or publisher account did it.
import type { DomainEvent } from "../events/events.js";
import { toGlobalId } from "graphql-relay";
import type { Dataset } from "../generated/prisma/client.js";

// The same ids as graphql/relay.ts encodeGlobalId, without pulling the schema into a job.
const encodeGlobalId = toGlobalId;

/** Event types a webhook delivery may subscribe to. */
export const WEBHOOK_EVENT_TYPES = [
  "dataset.updated",
  "pipeline.run.succeeded",
  "pipeline.run.failed",
  "credits.low",
  "purchase.renewal_failed",
  "delivery.failed",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** Only a dataset's publisher hears about its runs. */
export const PUBLISHER_EVENT_TYPES: readonly WebhookEventType[] = [
  "pipeline.run.succeeded",
  "pipeline.run.failed",
];

export const isWebhookEventType = (type: string): type is WebhookEventType =>
  (WEBHOOK_EVENT_TYPES as readonly string[]).includes(type);

export interface Envelope {
  type: string;
  /** ISO 8601: when the event happened (each send's own time is in `webhook-timestamp`). */
  timestamp: string;
  data: Record<string, unknown>;
}

/** The envelope of a domain event, or null for events webhooks do not carry. */
export function envelopeOf(event: DomainEvent): Envelope | null {
  const base = { type: event.type, timestamp: event.occurredAt };
  switch (event.type) {
    case "dataset.updated": {
      const d = event.data;
      return {
        ...base,
        data: {
          datasetId: encodeGlobalId("Dataset", d.datasetId),
          version: d.version,
          rowCount: d.rowCount,
          changedRows: d.changedRows,
          cause: d.cause,
        },
      };
    }
    case "pipeline.run.succeeded":
    case "pipeline.run.failed": {
      const d = event.data;
      return {
        ...base,
        data: {
          runId: encodeGlobalId("PipelineRun", d.runId),
          pipelineId: encodeGlobalId("Pipeline", d.pipelineId),
          datasetId: encodeGlobalId("Dataset", d.datasetId),
          rowsRead: d.rowsRead,
          rowsWritten: d.rowsWritten,
          rowsRejected: d.rowsRejected,
          error: d.error,
        },
      };
    }
    case "credits.low": {
      const d = event.data;
      return {
        ...base,
        data: {
          accountId: encodeGlobalId("Account", d.accountId),
          balance: d.balance,
          threshold: d.threshold,
        },
      };
    }
    case "purchase.renewal_failed": {
      const d = event.data;
      return {
        ...base,
        data: {
          accountId: encodeGlobalId("Account", d.accountId),
          purchaseId: encodeGlobalId("Purchase", d.purchaseId),
          datasetId: encodeGlobalId("Dataset", d.datasetId),
          required: d.required,
          balance: d.balance,
          expiresAt: d.expiresAt,
        },
      };
    }
    case "delivery.failed": {
      const d = event.data;
      return {
        ...base,
        data: {
          deliveryId: encodeGlobalId("Delivery", d.deliveryId),
          eventId: d.eventId,
          reason: d.reason,
          disabled: d.disabled,
        },
      };
    }
    default:
      return null;
  }
}

/** `triggerDelivery`: the dataset as it is now, told as an update (`cause: "TRIGGER"`). */
export function triggerEnvelope(dataset: Pick<Dataset, "id" | "version" | "rowCount">, now: Date): Envelope {
  return {
    type: "dataset.updated",
    timestamp: now.toISOString(),
    data: {
      datasetId: encodeGlobalId("Dataset", dataset.id),
      version: dataset.version,
      rowCount: Number(dataset.rowCount),
      changedRows: 0,
      cause: "TRIGGER",
    },
  };
}
