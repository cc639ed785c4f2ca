import { Field, ObjectType, registerEnumType } from "type-graphql";
import {
  EarningsEntryKind,
  PayoutStatus,
  type EarningsEntry as EarningsEntryRow,
  type Payout as PayoutRow,
} from "../generated/prisma/client.js";
import { CreditTransaction } from "../credits/credit.types.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";
import { Sale } from "../sales/sale.types.js";
import type { EarningsSummary } from "./earnings.service.js";

registerEnumType(EarningsEntryKind, { name: "EarningsEntryKind" });
registerEnumType(PayoutStatus, { name: "PayoutStatus" });

@ObjectType({
  implements: Node,
  description: "One entry of a publisher's earnings ledger: a sale, a refund, a payout or a reversed payout.",
})
export class EarningsEntry extends Node {
  accountId!: string;
  saleId!: string | null;
  payoutId!: string | null;
  datasetId!: string | null;

  @Field(() => EarningsEntryKind)
  kind!: EarningsEntryKind;

  @Field(() => SafeInt, { description: "What the buyer paid (negative on a refund); 0 for payouts." })
  gross!: number;

  @Field(() => SafeInt, { description: "The platform fee taken (negative on a refund); 0 for payouts." })
  fee!: number;

  @Field(() => SafeInt, { description: "The fee rate applied, in basis points (250 = 2.5%)." })
  feeBasisPoints!: number;

  @Field(() => SafeInt, { description: "Signed change of the earnings balance." })
  amount!: number;

  @Field(() => SafeInt)
  balanceAfter!: number;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: EarningsEntryRow): EarningsEntry {
    return Object.assign(new EarningsEntry(), {
      id: encodeGlobalId("EarningsEntry", row.id),
      accountId: row.accountId,
      saleId: row.saleId,
      payoutId: row.payoutId,
      datasetId: row.datasetId,
      kind: row.kind,
      gross: safeInt(row.gross),
      fee: safeInt(row.fee),
      feeBasisPoints: row.feeBasisPoints,
      amount: safeInt(row.amount),
      balanceAfter: safeInt(row.balanceAfter),
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class EarningsEntryConnection extends ConnectionType(EarningsEntry) {}

@ObjectType({ implements: Node, description: "A publisher's request to be paid part of its earnings." })
export class Payout extends Node {
  accountId!: string;

  @Field(() => SafeInt)
  amount!: number;

  @Field(() => PayoutStatus)
  status!: PayoutStatus;

  @Field(() => String, {
    nullable: true,
    description: "The payment reference (PAID) or the reason (REJECTED).",
  })
  note!: string | null;

  @Field(() => Date, { nullable: true })
  decidedAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: PayoutRow): Payout {
    return Object.assign(new Payout(), {
      id: encodeGlobalId("Payout", row.id),
      accountId: row.accountId,
      amount: safeInt(row.amount),
      status: row.status,
      note: row.note,
      decidedAt: row.decidedAt,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class PayoutConnection extends ConnectionType(Payout) {}

@ObjectType({ description: "A publisher's earnings at a glance." })
export class Earnings {
  @Field(() => SafeInt, { description: "Available to pay out now." })
  balance!: number;

  @Field(() => SafeInt, { description: "What buyers paid, less refunds." })
  gross!: number;

  @Field(() => SafeInt, { description: "Platform fees, less fees given back on refunds." })
  fees!: number;

  @Field(() => SafeInt, { description: "Requested payouts not decided yet." })
  pending!: number;

  @Field(() => SafeInt, { description: "Payouts paid." })
  paidOut!: number;

  static from(summary: EarningsSummary): Earnings {
    return Object.assign(new Earnings(), {
      balance: safeInt(summary.balance),
      gross: safeInt(summary.gross),
      fees: safeInt(summary.fees),
      pending: safeInt(summary.pending),
      paidOut: safeInt(summary.paidOut),
    });
  }
}

@ObjectType()
export class PayoutPayload {
  @Field(() => Payout)
  payout!: Payout;

  @Field(() => Boolean, {
    description: "True when nothing was applied this time (a retry, a second decision).",
  })
  replayed!: boolean;
}

@ObjectType()
export class RefundPayload {
  @Field(() => Sale)
  sale!: Sale;

  @Field(() => CreditTransaction, { description: "The buyer's REFUND ledger entry." })
  transaction!: CreditTransaction;

  @Field(() => Boolean, { description: "True when the sale was refunded before: nothing was applied again." })
  replayed!: boolean;
}
