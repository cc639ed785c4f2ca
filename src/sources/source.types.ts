import { Field, ObjectType, registerEnumType } from "type-graphql";
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
      schedule: row.schedule,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    });
  }
}

@ObjectType()
export class SourceConnection extends ConnectionType(Source) {}
