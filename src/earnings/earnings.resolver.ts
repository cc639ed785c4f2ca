import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
} from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import { CreditTransaction } from "../credits/credit.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";
import { PayoutStatus } from "../generated/prisma/client.js";
import { Sale } from "../sales/sale.types.js";
import {
  Earnings,
  EarningsEntry,
  EarningsEntryConnection,
  Payout,
  PayoutConnection,
  PayoutPayload,
  RefundPayload,
} from "./earnings.types.js";

@Resolver(() => EarningsEntry)
export class EarningsResolver {
  @Authorized("PUBLISHER", "account:read")
  @Query(() => Earnings, {
    description: "Your earnings from sales and metered reads (admins: any account's).",
  })
  async earnings(
    @Arg("accountId", () => ID, { nullable: true, description: "Admins: another account." })
    accountId: string | null,
    @Ctx() ctx: Context,
  ) {
    const target = accountId ? decodeGlobalId(accountId, ["Account"]).id : null;
    return Earnings.from(await ctx.services.earnings.summary(ctx.caller, target));
  }

  @Authorized("account:read")
  @Query(() => EarningsEntryConnection, {
    description: "Your earnings ledger, oldest first: it sums to earnings.balance.",
  })
  async earningsEntries(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.earnings.entries.page(ctx.caller, args), EarningsEntry.from);
  }

  @Authorized("account:read")
  @Query(() => PayoutConnection, { description: "Your payouts (admins: everyone's), oldest first." })
  async payouts(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("status", () => PayoutStatus, { nullable: true }) status: PayoutStatus | null,
    @Ctx() ctx: Context,
  ) {
    return toConnection(await ctx.services.earnings.payoutPage(ctx.caller, args, status), Payout.from);
  }

  @Authorized("PUBLISHER", "account:write")
  @Mutation(() => PayoutPayload, {
    description:
      "Asks to be paid part of your earnings; the amount is set aside at once. A retry with the same idempotencyKey makes one payout.",
  })
  async requestPayout(
    @Arg("amount", () => SafeInt) amount: number,
    @Arg("idempotencyKey", () => String, { nullable: true }) idempotencyKey: string | null,
    @Ctx() ctx: Context,
  ) {
    // An argument left out arrives as undefined, not null.
    const { payout, replayed } = await ctx.services.earnings.requestPayout(
      ctx.caller,
      amount,
      idempotencyKey ?? null,
    );
    return { payout: Payout.from(payout), replayed };
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => PayoutPayload, {
    description: "Admin: the payout was paid. Final; approving again pays nothing.",
  })
  async approvePayout(
    @Arg("id", () => ID) id: string,
    @Arg("reference", () => String, { description: "The payment's reference (bank transfer id)." })
    reference: string,
    @Ctx() ctx: Context,
  ) {
    const raw = decodeGlobalId(id, ["Payout"]).id;
    const { payout, replayed } = await ctx.services.earnings.approvePayout(ctx.caller, raw, reference);
    return { payout: Payout.from(payout), replayed };
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => PayoutPayload, {
    description: "Admin: refuse a requested payout; its amount returns to the earnings.",
  })
  async rejectPayout(
    @Arg("id", () => ID) id: string,
    @Arg("reason", () => String) reason: string,
    @Ctx() ctx: Context,
  ) {
    const raw = decodeGlobalId(id, ["Payout"]).id;
    const { payout, replayed } = await ctx.services.earnings.rejectPayout(ctx.caller, raw, reason);
    return { payout: Payout.from(payout), replayed };
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => RefundPayload, {
    description:
      "Admin: refund a sale whole. The buyer's credits come back, the publisher's earnings and the fee are reversed.",
  })
  async refundSale(
    @Arg("saleId", () => ID) saleId: string,
    @Arg("reason", () => String) reason: string,
    @Ctx() ctx: Context,
  ) {
    const raw = decodeGlobalId(saleId, ["Sale"]).id;
    const { sale, transaction, replayed } = await ctx.services.earnings.refundSale(ctx.caller, raw, reason);
    return { sale: Sale.from(sale), transaction: CreditTransaction.from(transaction), replayed };
  }

  @Authorized("ADMIN", "admin")
  @Query(() => Int, {
    description: "Admin: the platform fee on every sale and metered read, in basis points.",
  })
  async platformFee(@Ctx() ctx: Context) {
    return ctx.services.earnings.platformFee(ctx.caller);
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => Int, {
    description: "Admin: the platform fee from the next charge on, in basis points (0 to 10000). Audited.",
  })
  async setPlatformFee(@Arg("basisPoints", () => Int) basisPoints: number, @Ctx() ctx: Context) {
    return ctx.services.earnings.setPlatformFee(ctx.caller, basisPoints);
  }

  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() entry: EarningsEntry, @Ctx() ctx: Context) {
    return entry.datasetId ? ctx.loaders.node("Dataset", entry.datasetId) : null;
  }

  @FieldResolver(() => Sale, { nullable: true })
  async sale(@Root() entry: EarningsEntry, @Ctx() ctx: Context) {
    return entry.saleId ? ctx.loaders.node("Sale", entry.saleId) : null;
  }

  @FieldResolver(() => Payout, { nullable: true })
  async payout(@Root() entry: EarningsEntry, @Ctx() ctx: Context) {
    return entry.payoutId ? ctx.loaders.node("Payout", entry.payoutId) : null;
  }
}
