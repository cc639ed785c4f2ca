import { Field, ID, ObjectType, registerEnumType } from "type-graphql";
import {
  PurchaseStatus,
  SaleKind,
  type Purchase as PurchaseRow,
  type Sale as SaleRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(SaleKind, { name: "SaleKind" });

@ObjectType({ implements: Node, description: "Credits a buyer paid for a publisher's dataset." })
export class Sale extends Node {
  datasetId!: string;
  buyerAccountId!: string;
  sellerAccountId!: string;

  @Field(() => SaleKind)
  kind!: SaleKind;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => SafeInt, { description: "Records sold (METERED sales)." })
  records!: number;

  @Field(() => Date, { nullable: true, description: "When an admin refunded it (both sides reversed)." })
  refundedAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: SaleRow): Sale {
    return Object.assign(new Sale(), {
      id: encodeGlobalId("Sale", row.id),
      datasetId: row.datasetId,
      buyerAccountId: row.buyerAccountId,
      sellerAccountId: row.sellerAccountId,
      kind: row.kind,
      credits: safeInt(row.credits),
      records: safeInt(row.records),
      refundedAt: row.refundedAt,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class SaleConnection extends ConnectionType(Sale) {}

registerEnumType(PurchaseStatus, { name: "PurchaseStatus" });

@ObjectType({
  description: "An entitlement: the buyer may read the dataset while it is ACTIVE and unexpired.",
})
export class Purchase {
  datasetId!: string;

  @Field(() => ID)
  id!: string;

  @Field(() => PurchaseStatus)
  status!: PurchaseStatus;

  @Field(() => Date, { nullable: true, description: "MONTHLY purchases: when access ends unless renewed." })
  expiresAt!: Date | null;

  @Field(() => Date, { description: "When it was first bought." })
  createdAt!: Date;

  @Field(() => Boolean, { description: "MONTHLY: renewed from credits at term end; false once cancelled." })
  autoRenew!: boolean;

  @Field(() => Boolean, {
    description: "The renewal of the current term failed (not enough credits); retried until expiresAt.",
  })
  renewalFailed!: boolean;

  static from(row: PurchaseRow): Purchase {
    return Object.assign(new Purchase(), {
      id: encodeGlobalId("Purchase", row.id),
      datasetId: row.datasetId,
      status: row.status,
      expiresAt: row.expiresAt,
      createdAt: row.createdAt,
      autoRenew: row.autoRenew,
      renewalFailed:
        row.renewalFailedFor !== null && row.renewalFailedFor.getTime() === row.expiresAt?.getTime(),
    });
  }
}

@ObjectType()
export class PurchaseConnection extends ConnectionType(Purchase) {}

@ObjectType()
export class PurchasePayload {
  @Field(() => Purchase)
  purchase!: Purchase;

  @Field(() => Sale)
  sale!: Sale;

  @Field(() => SafeInt, { description: "Credits left after the purchase." })
  balance!: number;

  @Field(() => Boolean, {
    description: "True when this idempotency key was used before: nothing was charged again.",
  })
  replayed!: boolean;
}

export enum SalesGroup {
  DAY = "DAY",
  DATASET = "DATASET",
  CATEGORY = "CATEGORY",
}
registerEnumType(SalesGroup, { name: "SalesGroup" });

@ObjectType({ description: "Sales of one group: a UTC day (YYYY-MM-DD), a dataset slug or a category." })
export class SalesStat {
  @Field(() => String)
  group!: string;

  @Field(() => SafeInt)
  sales!: number;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => SafeInt)
  records!: number;
}
