// What live subscriptions send: one object per event, built from the DomainEvent read back from
// Redis as JSON (so times arrive as strings and are made Dates again here). Ids are global ids, as
// everywhere in the API; the full objects (Dataset, PipelineRun) are fields, read when the event
// is delivered and only when asked for.
import { Field, Float, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import { PipelineRunStatus } from "../generated/prisma/client.js";
import type { DatasetUpdated, DeliveryUpdated, PipelineRunUpdated } from "../events/events.js";
import { encodeGlobalId } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";

export enum DatasetChangeCause {
  PIPELINE_RUN = "PIPELINE_RUN",
  PUSH = "PUSH",
  CORRECTION = "CORRECTION",
}

registerEnumType(DatasetChangeCause, {
  name: "DatasetChangeCause",
  description: "What changed a dataset's records: a pipeline run, records pushed, or a correction.",
});

@ObjectType("LiveUpdateBase")
abstract class LiveUpdate {
  @Field(() => ID, {
    description: "The event's id: unique per event, and the `webhook-id` of the same event's webhooks.",
  })
  eventId!: string;

  @Field(() => Date)
  occurredAt!: Date;
}

@ObjectType({ description: "A dataset's records changed and its version moved." })
export class DatasetUpdate extends LiveUpdate {
  rawDatasetId!: string;
  rawRunId!: string | null;

  @Field(() => ID)
  datasetId!: string;

  @Field(() => Int, { description: "The dataset's version after the change." })
  version!: number;

  @Field(() => SafeInt, { description: "Rows in the dataset after the change." })
  rowCount!: number;

  @Field(() => SafeInt, { description: "Rows written or deleted by the change." })
  changedRows!: number;

  @Field(() => DatasetChangeCause)
  cause!: DatasetChangeCause;

  @Field(() => ID, { nullable: true, description: "The pipeline run that made the change, if one did." })
  runId!: string | null;

  static from(event: DatasetUpdated): DatasetUpdate {
    const { data } = event;
    return Object.assign(new DatasetUpdate(), {
      eventId: event.id,
      occurredAt: new Date(event.occurredAt),
      rawDatasetId: data.datasetId,
      rawRunId: data.runId,
      datasetId: encodeGlobalId("Dataset", data.datasetId),
      version: data.version,
      rowCount: data.rowCount,
      changedRows: data.changedRows,
      cause: data.cause as DatasetChangeCause,
      runId: data.runId === null ? null : encodeGlobalId("PipelineRun", data.runId),
    });
  }
}

@ObjectType({ description: "A pipeline run started, progressed or ended." })
export class PipelineRunUpdate extends LiveUpdate {
  rawRunId!: string;

  @Field(() => ID)
  runId!: string;

  @Field(() => ID)
  pipelineId!: string;

  @Field(() => PipelineRunStatus)
  status!: PipelineRunStatus;

  @Field(() => Float, { nullable: true, description: "0 to 1 while running, when the total is known." })
  progress!: number | null;

  @Field(() => SafeInt)
  rowsRead!: number;

  @Field(() => SafeInt)
  rowsWritten!: number;

  @Field(() => SafeInt)
  rowsRejected!: number;

  static from(event: PipelineRunUpdated): PipelineRunUpdate {
    const { data } = event;
    return Object.assign(new PipelineRunUpdate(), {
      eventId: event.id,
      occurredAt: new Date(event.occurredAt),
      rawRunId: data.runId,
      runId: encodeGlobalId("PipelineRun", data.runId),
      pipelineId: encodeGlobalId("Pipeline", data.pipelineId),
      status: data.status,
      progress: data.progress,
      rowsRead: data.rowsRead,
      rowsWritten: data.rowsWritten,
      rowsRejected: data.rowsRejected,
    });
  }
}

@ObjectType({ description: "A delivery's state changed, or one of its attempts did." })
export class DeliveryUpdate extends LiveUpdate {
  @Field(() => ID)
  deliveryId!: string;

  @Field(() => String, {
    description:
      "The delivery's status after the change (ACTIVE, PAUSED, DISABLED), or its attempt's when `attemptId` is set.",
  })
  status!: string;

  @Field(() => ID, { nullable: true, description: "The attempt that changed, if one did." })
  attemptId!: string | null;

  static from(event: DeliveryUpdated): DeliveryUpdate {
    const { data } = event;
    return Object.assign(new DeliveryUpdate(), {
      eventId: event.id,
      occurredAt: new Date(event.occurredAt),
      deliveryId: encodeGlobalId("Delivery", data.deliveryId),
      status: data.status,
      attemptId: data.attemptId === null ? null : encodeGlobalId("DeliveryAttempt", data.attemptId),
    });
  }
}
