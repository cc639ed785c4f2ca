import { ArgsType, Field, ID, InputType, Int, ObjectType } from "type-graphql";
import type { ApiKey as ApiKeyRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";

@ObjectType({
  implements: Node,
  description: "An API key. The secret is shown once, when created or rotated.",
})
export class ApiKey extends Node {
  rawId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String, { description: "The public start of the key, e.g. dh_k3j5x9q2mw." })
  prefix!: string;

  @Field(() => [String])
  scopes!: string[];

  @Field(() => Boolean, { description: "Requests with this key must carry an HMAC signature." })
  requireSignature!: boolean;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date, { nullable: true, description: "Last request made with it (to the minute)." })
  lastUsedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  expiresAt!: Date | null;

  @Field(() => Date, { nullable: true })
  revokedAt!: Date | null;

  @Field(() => Date, { nullable: true, description: "Set on a rotated key: it stops working at this time." })
  graceUntil!: Date | null;

  @Field(() => SafeInt, {
    nullable: true,
    description: "Credits it may spend per UTC day; null: no limit of its own.",
  })
  dailySpendLimit!: number | null;

  @Field(() => SafeInt, {
    nullable: true,
    description: "Credits it may spend per UTC month; null: no limit of its own.",
  })
  monthlySpendLimit!: number | null;

  @Field(() => [ID], { description: "The datasets it may read and buy; empty: all its account may." })
  datasetIds!: string[];

  static from(row: ApiKeyRow): ApiKey {
    return Object.assign(new ApiKey(), {
      id: encodeGlobalId("ApiKey", row.id),
      name: row.name,
      prefix: row.prefix,
      scopes: row.scopes,
      requireSignature: row.requireSignature,
      createdAt: row.createdAt,
      lastUsedAt: row.lastUsedAt,
      expiresAt: row.expiresAt,
      revokedAt: row.revokedAt,
      graceUntil: row.graceUntil,
      dailySpendLimit: row.dailySpendLimit === null ? null : Number(row.dailySpendLimit),
      monthlySpendLimit: row.monthlySpendLimit === null ? null : Number(row.monthlySpendLimit),
      datasetIds: row.datasetIds.map((id) => encodeGlobalId("Dataset", id)),
      rawId: row.id,
    });
  }
}

@ObjectType()
export class ApiKeyConnection extends ConnectionType(ApiKey) {}

@ObjectType({ description: "A new key. Store `secret` now: it is never shown again." })
export class ApiKeySecret {
  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field(() => String, { description: "Send it as the X-API-Key header." })
  secret!: string;

  @Field(() => String, {
    nullable: true,
    description:
      "Keys that require signed requests: the HMAC key for X-Datahus-Signature. Never sent with requests.",
  })
  signingSecret!: string | null;
}

@InputType()
export class CreateApiKeyInput {
  @Field(() => String)
  name!: string;

  @Field(() => [String], { nullable: true, description: "Defaults to every scope your role has." })
  scopes?: string[] | null;

  @Field(() => Date, { nullable: true })
  expiresAt?: Date | null;

  @Field(() => Boolean, { nullable: true, description: "Require HMAC-signed requests with this key." })
  requireSignature?: boolean | null;

  @Field(() => SafeInt, { nullable: true, description: "Credits it may spend per UTC day." })
  dailySpendLimit?: number | null;

  @Field(() => SafeInt, { nullable: true, description: "Credits it may spend per UTC month." })
  monthlySpendLimit?: number | null;

  @Field(() => [ID], { nullable: true, description: "Limit it to these datasets (reads and purchases)." })
  datasetIds?: string[] | null;
}

@InputType({ description: "A key's limits, replaced whole: null or empty removes a limit." })
export class ApiKeyLimitsInput {
  @Field(() => SafeInt, { nullable: true })
  dailySpendLimit?: number | null;

  @Field(() => SafeInt, { nullable: true })
  monthlySpendLimit?: number | null;

  @Field(() => [ID], { nullable: true })
  datasetIds?: string[] | null;
}

@ObjectType({
  description: "Credits a key spent (reads in flight count in full) in the current UTC day and month.",
})
export class ApiKeySpend {
  @Field(() => SafeInt)
  today!: number;

  @Field(() => SafeInt)
  thisMonth!: number;
}

@ArgsType()
export class RotateApiKeyArgs {
  @Field(() => ID)
  id!: string;

  @Field(() => Int, {
    nullable: true,
    description: "Seconds the old secret keeps working (default: one day).",
  })
  graceSeconds?: number | null;
}
