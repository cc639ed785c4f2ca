import { Field, ID, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  AccountStatus,
  PlanCode,
  type Account as AccountRow,
  type Plan as PlanRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(AccountStatus, { name: "AccountStatus" });
registerEnumType(PlanCode, { name: "PlanCode" });

@ObjectType({ description: "A plan: how many requests an account may make." })
export class Plan {
  @Field(() => ID, { description: "Stable id of the plan (a cache key, derived from its code)." })
  id!: string;

  @Field(() => PlanCode)
  code!: PlanCode;

  @Field(() => String)
  name!: string;

  @Field(() => Int)
  requestsPerMinute!: number;

  @Field(() => Int, { nullable: true })
  hourlyQuota!: number | null;

  @Field(() => Int, { nullable: true, description: "Requests per rolling 30 days." })
  monthlyQuota!: number | null;

  static from(row: PlanRow): Plan {
    return Object.assign(new Plan(), {
      id: encodeGlobalId("Plan", row.code),
      code: row.code,
      name: row.name,
      requestsPerMinute: row.requestsPerMinute,
      hourlyQuota: row.hourlyQuota,
      monthlyQuota: row.monthlyQuota,
    });
  }
}

@ObjectType({ implements: Node, description: "An organisation: publisher, buyer or both." })
export class Account extends Node {
  planId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String)
  slug!: string;

  @Field(() => SafeInt, { description: "Prepaid credits available." })
  creditBalance!: number;

  @Field(() => AccountStatus)
  status!: AccountStatus;

  @Field(() => Int, { nullable: true, description: "ENTERPRISE accounts: requests per minute." })
  rateLimitPerMinute!: number | null;

  @Field(() => SafeInt, {
    nullable: true,
    description:
      "A debit taking the balance below this sends credits.low to the account's webhooks, once per crossing.",
  })
  lowCreditThreshold!: number | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: AccountRow): Account {
    return Object.assign(new Account(), {
      id: encodeGlobalId("Account", row.id),
      planId: row.planId,
      name: row.name,
      slug: row.slug,
      creditBalance: safeInt(row.creditBalance),
      status: row.status,
      rateLimitPerMinute: row.rateLimitPerMinute,
      lowCreditThreshold: row.lowCreditThreshold === null ? null : safeInt(row.lowCreditThreshold),
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class AccountConnection extends ConnectionType(Account) {}
