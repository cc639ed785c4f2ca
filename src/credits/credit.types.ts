import { Field, ObjectType, registerEnumType } from "type-graphql";
import {
  CreditTransactionKind,
  type CreditTransaction as CreditTransactionRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(CreditTransactionKind, { name: "CreditTransactionKind" });

@ObjectType({ implements: Node, description: "One entry of an account's append-only credit ledger." })
export class CreditTransaction extends Node {
  accountId!: string;

  @Field(() => CreditTransactionKind)
  kind!: CreditTransactionKind;

  @Field(() => SafeInt, { description: "Signed: positive adds credits, negative spends them." })
  amount!: number;

  @Field(() => SafeInt)
  balanceAfter!: number;

  @Field(() => String, { nullable: true })
  idempotencyKey!: string | null;

  @Field(() => String, { nullable: true })
  reference!: string | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: CreditTransactionRow): CreditTransaction {
    return Object.assign(new CreditTransaction(), {
      id: encodeGlobalId("CreditTransaction", row.id),
      accountId: row.accountId,
      kind: row.kind,
      amount: safeInt(row.amount),
      balanceAfter: safeInt(row.balanceAfter),
      idempotencyKey: row.idempotencyKey,
      reference: row.reference,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class CreditTransactionConnection extends ConnectionType(CreditTransaction) {}

export enum UsageGroup {
  DAY = "DAY",
  DATASET = "DATASET",
  OPERATION = "OPERATION",
}
registerEnumType(UsageGroup, { name: "UsageGroup" });

@ObjectType({
  description: "Requests, records and credits of one group (a UTC day, a dataset id or an operation).",
})
export class UsageRow {
  @Field(() => String)
  group!: string;

  @Field(() => SafeInt)
  requests!: number;

  @Field(() => SafeInt)
  records!: number;

  @Field(() => SafeInt)
  credits!: number;
}

@ObjectType()
export class TopUpPayload {
  @Field(() => CreditTransaction)
  transaction!: CreditTransaction;

  @Field(() => Boolean, {
    description: "True when this idempotency key was used before: nothing was applied again.",
  })
  replayed!: boolean;
}

@ObjectType({ description: "What one request did to one dataset: a line of the usage log." })
export class UsageLogEntry {
  datasetId!: string;
  apiKeyId!: string | null;

  @Field(() => Date, { description: "When it happened, to the second." })
  at!: Date;

  @Field(() => String, { description: "The request's id (X-Request-Id), to match logs and receipts." })
  requestId!: string;

  @Field(() => String, { description: "records, record, aggregate, export, delivery..." })
  operation!: string;

  @Field(() => SafeInt)
  records!: number;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => SafeInt)
  durationMs!: number;
}

@ObjectType()
export class UsageLogEntryConnection extends ConnectionType(UsageLogEntry) {}
