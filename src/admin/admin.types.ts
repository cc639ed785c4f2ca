import { GraphQLJSONObject } from "graphql-scalars";
import { Field, ObjectType } from "type-graphql";
import type { AdminLogEntry as AdminLogEntryRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";

@ObjectType({ implements: Node, description: "One thing an admin did, written with the change itself." })
export class AdminLogEntry extends Node {
  @Field(() => String, {
    nullable: true,
    description: "The admin user's global id; null for the platform itself.",
  })
  actorId!: string | null;

  @Field(() => String, {
    description: "What was done: payout.approve, sale.refund, plan.update, user.role...",
  })
  action!: string;

  @Field(() => String)
  targetType!: string;

  @Field(() => String, { description: "The target's global id (its raw id for targets that are no node)." })
  targetId!: string;

  @Field(() => GraphQLJSONObject)
  details!: Record<string, unknown>;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: AdminLogEntryRow): AdminLogEntry {
    return Object.assign(new AdminLogEntry(), {
      id: encodeGlobalId("AdminLogEntry", row.id),
      actorId: row.actorId ? encodeGlobalId("User", row.actorId) : null,
      action: row.action,
      targetType: row.targetType,
      targetId: /^[0-9a-f-]{36}$/.test(row.targetId)
        ? encodeGlobalId(row.targetType, row.targetId)
        : row.targetId,
      details: row.details as Record<string, unknown>,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class AdminLogEntryConnection extends ConnectionType(AdminLogEntry) {}
