import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import { CreditTransaction } from "../credits/credit.types.js";
import { CreditOrderStatus, PaymentProvider } from "../generated/prisma/client.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  ConfirmCreditOrderPayload,
  CreditOrder,
  CreditOrderConnection,
  CreditOrderPayload,
  CreditPack,
  CreditPackInput,
} from "./packs.types.js";

@Resolver(() => CreditOrder)
export class CreditPackResolver {
  @Query(() => [CreditPack], {
    description: "Credit packs on sale, cheapest first (admins: inactive ones too).",
  })
  async creditPacks(@Ctx() ctx: Context) {
    return (await ctx.services.packs.packs(ctx.caller)).map(CreditPack.from);
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => CreditPack, { description: "Admin: create or reprice a credit pack (audited)." })
  async setCreditPack(@Arg("input", () => CreditPackInput) input: CreditPackInput, @Ctx() ctx: Context) {
    return CreditPack.from(await ctx.services.packs.setPack(ctx.caller, input));
  }

  @Authorized("account:write")
  @Mutation(() => CreditOrderPayload, {
    description:
      "Orders a credit pack. STRIPE: pay at checkoutUrl; the credits come with Stripe's signed webhook. INVOICE: an admin confirms the payment.",
  })
  async buyCreditPack(
    @Arg("packCode", () => String) packCode: string,
    @Arg("provider", () => PaymentProvider, { defaultValue: PaymentProvider.STRIPE })
    provider: PaymentProvider,
    @Arg("idempotencyKey", () => String, { nullable: true }) idempotencyKey: string | null,
    @Ctx() ctx: Context,
  ) {
    const { order, replayed } = await ctx.services.packs.order(
      ctx.caller,
      packCode,
      provider,
      idempotencyKey ?? null,
    );
    return { order: CreditOrder.from(order), replayed };
  }

  @Authorized("account:write")
  @Mutation(() => CreditOrder, { description: "Cancels an order not paid yet." })
  async cancelCreditOrder(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    const orderId = decodeGlobalId(id, ["CreditOrder"]).id;
    return CreditOrder.from(await ctx.services.packs.cancel(ctx.caller, orderId));
  }

  @Authorized("account:read")
  @Query(() => CreditOrderConnection, {
    description: "Your credit pack orders (admins: everyone's), oldest first.",
  })
  async creditOrders(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("status", () => CreditOrderStatus, { nullable: true }) status: CreditOrderStatus | null,
    @Ctx() ctx: Context,
  ) {
    return toConnection(await ctx.services.packs.orderPage(ctx.caller, args, status), CreditOrder.from);
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => ConfirmCreditOrderPayload, {
    description: "Admin: an invoiced order was paid; grants its credits once (audited).",
  })
  async confirmCreditOrder(
    @Arg("id", () => ID) id: string,
    @Arg("reference", () => String, { description: "The payment's reference (bank transfer...)." })
    reference: string,
    @Ctx() ctx: Context,
  ) {
    const orderId = decodeGlobalId(id, ["CreditOrder"]).id;
    const result = await ctx.services.packs.confirmInvoice(ctx.caller, orderId, reference);
    return {
      order: CreditOrder.from(result.order),
      transaction: CreditTransaction.from(result.transaction),
      replayed: result.replayed,
    };
  }
}
