import { GraphQLJSONObject } from "graphql-scalars";
import { Field, InputType, ObjectType, registerEnumType } from "type-graphql";
import { SourceType, type Source as SourceRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";

registerEnumType(SourceType, { name: "SourceType" });

@ObjectType({
  implements: Node,
  description: "Where a publisher's data comes from. Secrets are never exposed.",
})
export class Source extends Node {
  accountId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => SourceType)
  type!: SourceType;

  @Field(() => GraphQLJSONObject, { description: "The connector's non-secret settings." })
  config!: Record<string, unknown>;

  @Field(() => Boolean, { description: "Whether secrets (tokens, passwords, keys) are stored for it." })
  hasSecrets!: boolean;

  @Field(() => String, { nullable: true, description: "Cron expression for scheduled syncs." })
  schedule!: string | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  static from(row: SourceRow): Source {
    return Object.assign(new Source(), {
      id: encodeGlobalId("Source", row.id),
      accountId: row.accountId,
      name: row.name,
      type: row.type,
      config: isObject(row.config) ? row.config : {},
      hasSecrets: row.secretsEncrypted !== null,
      schedule: row.schedule,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    });
  }
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

@ObjectType()
export class SourceConnection extends ConnectionType(Source) {}

@InputType()
export class CreateSourceInput {
  @Field(() => String)
  name!: string;

  @Field(() => SourceType)
  type!: SourceType;

  @Field(() => GraphQLJSONObject, {
    description: "Non-secret settings; their shape depends on the type (see the README).",
  })
  config!: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: "Credentials (HTTP: token, headerValue, username, password). Encrypted, never returned.",
  })
  secrets?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true, description: "Cron expression (5 fields, UTC)." })
  schedule?: string | null;
}

@InputType({ description: "Fields left out keep their value. The type cannot change." })
export class UpdateSourceInput {
  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true, description: "Replaces the whole config." })
  config?: Record<string, unknown> | null;

  @Field(() => GraphQLJSONObject, {
    nullable: true,
    description: "Replaces the stored secrets; left out, they are kept; null removes them.",
  })
  secrets?: Record<string, unknown> | null;

  @Field(() => String, { nullable: true, description: "Cron expression; null removes it." })
  schedule?: string | null;
}

@ObjectType({ description: "The outcome of trying a source: a failure is reported here, not thrown." })
export class SourceConnectionTest {
  @Field(() => Boolean)
  ok!: boolean;

  @Field(() => String, { nullable: true })
  message!: string | null;

  @Field(() => [GraphQLJSONObject], { nullable: true, description: "Up to 5 records read." })
  sampleRecords!: Record<string, unknown>[] | null;
}
