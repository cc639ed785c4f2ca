import { Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  CreditOrderStatus,
  PaymentProvider,
  type CreditOrder as CreditOrderRow,
  type CreditPack as CreditPackRow,
} from "../generated/prisma/client.js";
import { CreditTransaction } from "../credits/credit.types.js";
import { ConnectionType, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(PaymentProvider, { name: "PaymentProvider" });
registerEnumType(CreditOrderStatus, { name: "CreditOrderStatus" });

@ObjectType({ description: "Credits for sale at a price an admin sets." })
export class CreditPack {
  @Field(() => String)
  code!: string;

  @Field(() => String)
  name!: string;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => Int, { description: "In the currency's smallest unit (cents)." })
  priceCents!: number;

  @Field(() => String, { description: "ISO 4217, lowercase." })
  currency!: string;

  @Field(() => Boolean, { description: "Inactive packs are not sold (admins see them)." })
  active!: boolean;

  static from(row: CreditPackRow): CreditPack {
    return Object.assign(new CreditPack(), { ...row, credits: safeInt(row.credits) });
  }
}

@InputType()
export class CreditPackInput {
  @Field(() => String, { description: "Lowercase letters, digits, - and _; an existing code is repriced." })
  code!: string;

  @Field(() => String)
  name!: string;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => Int)
  priceCents!: number;

  @Field(() => String, { defaultValue: "usd" })
  currency!: string;

  @Field(() => Boolean, { defaultValue: true })
  active!: boolean;
}

@ObjectType({ description: "A buyer's order of a credit pack, priced as the pack was when ordered." })
export class CreditOrder {
  accountId!: string;

  @Field(() => ID)
  id!: string;

  @Field(() => PaymentProvider)
  provider!: PaymentProvider;

  @Field(() => CreditOrderStatus)
  status!: CreditOrderStatus;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => Int)
  priceCents!: number;

  @Field(() => String)
  currency!: string;

  @Field(() => String, { nullable: true, description: "STRIPE: where the buyer pays." })
  checkoutUrl!: string | null;

  @Field(() => Date, { nullable: true })
  paidAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: CreditOrderRow): CreditOrder {
    return Object.assign(new CreditOrder(), {
      id: encodeGlobalId("CreditOrder", row.id),
      accountId: row.accountId,
      provider: row.provider,
      status: row.status,
      credits: safeInt(row.credits),
      priceCents: row.priceCents,
      currency: row.currency,
      checkoutUrl: row.checkoutUrl,
      paidAt: row.paidAt,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class CreditOrderConnection extends ConnectionType(CreditOrder) {}

@ObjectType()
export class CreditOrderPayload {
  @Field(() => CreditOrder)
  order!: CreditOrder;

  @Field(() => Boolean, { description: "True when this idempotency key was used before: the first order." })
  replayed!: boolean;
}

@ObjectType()
export class ConfirmCreditOrderPayload {
  @Field(() => CreditOrder)
  order!: CreditOrder;

  @Field(() => CreditTransaction, { description: "The TOP_UP that granted the credits." })
  transaction!: CreditTransaction;

  @Field(() => Boolean, { description: "True when the credits had been granted before: nothing added." })
  replayed!: boolean;
}
