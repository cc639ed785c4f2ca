import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  DeliveryAttemptStatus,
  DeliveryFormat,
  DeliveryKind,
  DeliveryMode,
  DeliveryStatus,
  DeliveryTrigger,
  type Delivery as DeliveryRow,
  type DeliveryAttempt as DeliveryAttemptRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";

registerEnumType(DeliveryKind, { name: "DeliveryKind" });
registerEnumType(DeliveryFormat, { name: "DeliveryFormat" });
registerEnumType(DeliveryTrigger, { name: "DeliveryTrigger" });
registerEnumType(DeliveryMode, { name: "DeliveryMode" });
registerEnumType(DeliveryStatus, { name: "DeliveryStatus" });
registerEnumType(DeliveryAttemptStatus, { name: "DeliveryAttemptStatus" });

@ObjectType({
  implements: Node,
  description: "How an account has a dataset's changes pushed to it. Secrets are never exposed.",
})
export class Delivery extends Node {
  accountId!: string;
  datasetId!: string;

  @Field(() => DeliveryKind)
  kind!: DeliveryKind;

  @Field(() => GraphQLJSONObject, { description: "The target's non-secret settings." })
  config!: Record<string, unknown>;

  @Field(() => Boolean, { description: "Whether credentials or a signing secret are stored for it." })
  hasSecrets!: boolean;

  @Field(() => DeliveryFormat, { nullable: true, description: "File drops' file format; null for webhooks." })
  format!: DeliveryFormat | null;

  @Field(() => Boolean)
  gzip!: boolean;

  @Field(() => DeliveryTrigger)
  trigger!: DeliveryTrigger;

  @Field(() => String, { nullable: true, description: "Cron expression (UTC) when trigger is SCHEDULE." })
  schedule!: string | null;

  @Field(() => DeliveryMode)
  mode!: DeliveryMode;

  @Field(() => [String], {
    description: "Webhook event types subscribed to; empty: every type that applies.",
  })
  eventTypes!: string[];

  @Field(() => DeliveryStatus)
  status!: DeliveryStatus;

  @Field(() => Int, { description: "Failed tries in a row; reset by a success or resumeDelivery." })
  consecutiveFailures!: number;

  @Field(() => Int, {
    nullable: true,
    description: "File drops: the dataset version of the last drop that landed (its manifest's version).",
  })
  lastDeliveredVersion!: number | null;

  @Field(() => Date, {
    nullable: true,
    description:
      "After a rotation: until when the previous signing secret still signs alongside the new one.",
  })
  previousSecretExpiresAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  static from(row: DeliveryRow): Delivery {
    return Object.assign(new Delivery(), {
      id: encodeGlobalId("Delivery", row.id),
      accountId: row.accountId,
      datasetId: row.datasetId,
      kind: row.kind,
      config:
        typeof row.config === "object" && row.config !== null && !Array.isArray(row.config) ? row.config : {},
      hasSecrets: row.secretsEncrypted !== null,
      format: row.format,
      gzip: row.gzip,
      trigger: row.trigger,
      schedule: row.schedule,
      mode: row.mode,
      eventTypes: row.eventTypes,
      status: row.status,
      consecutiveFailures: row.consecutiveFailures,
      lastDeliveredVersion: row.lastDeliveredVersion,
      previousSecretExpiresAt: row.previousSecretExpiresAt,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    });
  }
}

@ObjectType({ implements: Node, description: "One try of sending one event to a webhook." })
export class DeliveryAttempt extends Node {
  deliveryId!: string;

  @Field(() => String, { description: "The event's id, sent as `webhook-id`; the same on every try of it." })
  eventId!: string;

  @Field(() => String)
  eventType!: string;

  @Field(() => Int, { description: "1 for the first try of an event; redeliveries continue the count." })
  attempt!: number;

  @Field(() => DeliveryAttemptStatus, {
    description: "FAILED: another try is scheduled; DEAD: no more tries.",
  })
  status!: DeliveryAttemptStatus;

  @Field(() => Int, {
    nullable: true,
    description: "The receiver's HTTP status; null when it did not answer.",
  })
  httpStatus!: number | null;

  @Field(() => Int, { nullable: true })
  durationMs!: number | null;

  @Field(() => String, { nullable: true, description: "The first KiB of the receiver's answer." })
  responseExcerpt!: string | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => Date, { nullable: true, description: "When the next try is due (status FAILED)." })
  nextAttemptAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: DeliveryAttemptRow): DeliveryAttempt {
    return Object.assign(new DeliveryAttempt(), {
      id: encodeGlobalId("DeliveryAttempt", row.id),
      deliveryId: row.deliveryId,
      eventId: row.eventId,
      eventType: row.eventType,
      attempt: row.attempt,
      status: row.status,
      httpStatus: row.httpStatus,
      durationMs: row.durationMs,
      responseExcerpt: row.responseExcerpt,
      error: row.error,
      nextAttemptAt: row.nextAttemptAt,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class DeliveryConnection extends ConnectionType(Delivery) {}

@ObjectType()
export class DeliveryAttemptConnection extends ConnectionType(DeliveryAttempt) {}

@ObjectType({ description: "A delivery with its signing secret: shown here once, never again." })
export class DeliveryWithSecret {
  @Field(() => Delivery)
  delivery!: Delivery;

  @Field(() => String, {
    nullable: true,
    description:
      "Webhooks: the `whsec_` secret that signs every message. Store it now; it is not shown again.",
  })
  signingSecret!: string | null;
}

@ObjectType({ description: "An event handed to a delivery; its attempts appear as they are made." })
export class DeliveryDispatch {
  @Field(() => Delivery)
  delivery!: Delivery;

  @Field(() => String, { description: "The event's id, sent as `webhook-id`." })
  eventId!: string;
}

@InputType()
export class CreateDeliveryInput {
  @Field(() => ID)
  datasetId!: string;

  @Field(() => DeliveryKind)
  kind!: DeliveryKind;

  @Field(() => GraphQLJSONObject, {
    description:
      "WEBHOOK: url, headers; SFTP: host, port, username, path; S3: bucket, prefix, region, endpoint, forcePathStyle.",
  })
  config!: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description:
      "WEBHOOK: headers with secret values; SFTP: password or privateKey (+ passphrase); S3: accessKeyId, secretAccessKey. Encrypted, never returned.",
  })
  secrets?: Record<string, unknown> | null;

  @Field(() => DeliveryFormat, { nullable: true, description: "File drops: CSV, NDJSON or PARQUET." })
  format?: DeliveryFormat | null;

  @Field(() => Boolean, { nullable: true })
  gzip?: boolean | null;

  @Field(() => DeliveryTrigger, {
    nullable: true,
    description: "Default ON_UPDATE (SCHEDULE when a schedule is given).",
  })
  trigger?: DeliveryTrigger | null;

  @Field(() => String, { nullable: true, description: "Cron expression (5 fields, UTC) for SCHEDULE." })
  schedule?: string | null;

  @Field(() => DeliveryMode, {
    nullable: true,
    description: "File drops: INCREMENTAL (default) or SNAPSHOT.",
  })
  mode?: DeliveryMode | null;

  @Field(() => [String], {
    nullable: true,
    description:
      "Webhooks: dataset.updated, pipeline.run.succeeded, pipeline.run.failed (publishers), credits.low, purchase.renewal_failed, delivery.failed. Empty: all that apply.",
  })
  eventTypes?: string[] | null;
}

@InputType({ description: "Fields left out keep their value. The dataset and the kind cannot change." })
export class UpdateDeliveryInput {
  @Field(() => GraphQLJSONObject, { nullable: true, description: "Replaces the whole config." })
  config?: Record<string, unknown> | null;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: "Replaces the stored credentials; null removes them (a webhook keeps its signing secret).",
  })
  secrets?: Record<string, unknown> | null;

  @Field(() => DeliveryFormat, { nullable: true })
  format?: DeliveryFormat | null;

  @Field(() => Boolean, { nullable: true })
  gzip?: boolean | null;

  @Field(() => DeliveryTrigger, { nullable: true })
  trigger?: DeliveryTrigger | null;

  @Field(() => String, { nullable: true, description: "null removes it." })
  schedule?: string | null;

  @Field(() => DeliveryMode, { nullable: true })
  mode?: DeliveryMode | null;

  @Field(() => [String], { nullable: true })
  eventTypes?: string[] | null;
}
