import { Field, Int, ObjectType } from "type-graphql";
import { SafeInt, safeInt } from "../graphql/scalars.js";
import { buyerTotals, publisherTotals, type Statement as StatementData } from "./statement.js";

@ObjectType()
export class StatementTopUp {
  @Field(() => Date)
  at!: Date;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => String, { nullable: true, description: "credit-order:<id> for packs, admin top-up..." })
  reference!: string | null;
}

@ObjectType()
export class StatementPurchase {
  @Field(() => Date)
  at!: Date;

  @Field(() => String, { description: "The dataset's slug." })
  dataset!: string;

  @Field(() => String, { description: "PURCHASE (one-time) or SUBSCRIPTION (a MONTHLY term)." })
  kind!: string;

  @Field(() => SafeInt)
  credits!: number;
}

@ObjectType()
export class StatementReads {
  @Field(() => String)
  dataset!: string;

  @Field(() => Int)
  reads!: number;

  @Field(() => SafeInt)
  records!: number;

  @Field(() => SafeInt)
  credits!: number;
}

@ObjectType()
export class StatementSales {
  @Field(() => String)
  dataset!: string;

  @Field(() => Int)
  sales!: number;

  @Field(() => SafeInt, { description: "What buyers paid." })
  gross!: number;

  @Field(() => SafeInt, { description: "Platform fees." })
  fees!: number;

  @Field(() => SafeInt, { description: "gross - fees: what the publisher earned." })
  net!: number;
}

@ObjectType()
export class StatementPayout {
  @Field(() => Date)
  at!: Date;

  @Field(() => SafeInt)
  amount!: number;

  @Field(() => String)
  status!: string;

  @Field(() => String, { nullable: true })
  note!: string | null;
}

@ObjectType({ description: "Credits spent and bought in the month." })
export class BuyerStatement {
  @Field(() => SafeInt)
  openingBalance!: number;

  @Field(() => SafeInt)
  closingBalance!: number;

  @Field(() => SafeInt)
  topUps!: number;

  @Field(() => SafeInt)
  purchases!: number;

  @Field(() => SafeInt, { description: "Metered reads." })
  reads!: number;

  @Field(() => SafeInt)
  refunds!: number;

  @Field(() => [StatementTopUp])
  topUpLines!: StatementTopUp[];

  @Field(() => [StatementPurchase])
  purchaseLines!: StatementPurchase[];

  @Field(() => [StatementReads])
  readsByDataset!: StatementReads[];
}

@ObjectType({ description: "Earnings in the month: sales, fees, refunds and payouts." })
export class PublisherStatement {
  @Field(() => SafeInt)
  openingBalance!: number;

  @Field(() => SafeInt)
  closingBalance!: number;

  @Field(() => SafeInt, { description: "What buyers paid, less refunds." })
  gross!: number;

  @Field(() => SafeInt)
  fees!: number;

  @Field(() => SafeInt)
  net!: number;

  @Field(() => SafeInt, { description: "Payouts requested in the month and PAID." })
  paidOut!: number;

  @Field(() => [StatementSales])
  salesByDataset!: StatementSales[];

  @Field(() => [StatementPayout])
  payouts!: StatementPayout[];
}

@ObjectType({
  description:
    "One account's money in one UTC calendar month, both sides. Also as files: GET /api/v1/statements/{month}.csv and .pdf.",
})
export class Statement {
  @Field(() => String, { description: "YYYY-MM." })
  month!: string;

  @Field(() => Date)
  from!: Date;

  @Field(() => Date, { description: "Exclusive." })
  to!: Date;

  @Field(() => String)
  accountName!: string;

  @Field(() => BuyerStatement)
  buyer!: BuyerStatement;

  @Field(() => PublisherStatement)
  publisher!: PublisherStatement;

  static from(s: StatementData): Statement {
    const b = buyerTotals(s.buyer);
    const p = publisherTotals(s.publisher);
    return Object.assign(new Statement(), {
      month: s.month,
      from: s.from,
      to: s.to,
      accountName: s.accountName,
      buyer: {
        openingBalance: safeInt(s.buyer.openingBalance),
        closingBalance: safeInt(s.buyer.closingBalance),
        topUps: safeInt(b.topUps),
        purchases: safeInt(b.purchases),
        reads: safeInt(b.reads),
        refunds: safeInt(b.refunds),
        topUpLines: s.buyer.topUps.map((t) => ({ ...t, credits: safeInt(t.credits) })),
        purchaseLines: s.buyer.purchases.map((x) => ({ ...x, credits: safeInt(x.credits) })),
        readsByDataset: s.buyer.reads.map((r) => ({
          ...r,
          records: safeInt(r.records),
          credits: safeInt(r.credits),
        })),
      },
      publisher: {
        openingBalance: safeInt(s.publisher.openingBalance),
        closingBalance: safeInt(s.publisher.closingBalance),
        gross: safeInt(p.gross),
        fees: safeInt(p.fees),
        net: safeInt(p.net),
        paidOut: safeInt(p.paidOut),
        salesByDataset: s.publisher.sales.map((x) => ({
          ...x,
          gross: safeInt(x.gross),
          fees: safeInt(x.fees),
          net: safeInt(x.net),
        })),
        payouts: s.publisher.payouts.map((x) => ({ ...x, amount: safeInt(x.amount) })),
      },
    });
  }
}
