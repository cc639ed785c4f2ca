import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { safeInt } from "../graphql/scalars.js";
import { Account } from "../identity/account.types.js";
import { Purchase, PurchasePayload, Sale, SaleConnection, SalesGroup, SalesStat } from "./sale.types.js";

@Resolver(() => Sale)
export class SaleResolver {
  @Authorized("account:read")
  @Query(() => SaleConnection, {
    description: "Sales you made (publishers) or bought (buyers); admins see all.",
  })
  async sales(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.sales.sales.page(ctx.caller, args), Sale.from);
  }

  @Authorized("PUBLISHER", "account:read")
  @Query(() => [SalesStat], { description: "Counts and credit totals of your sales in [from, to), grouped." })
  async salesStats(
    @Arg("from", () => Date) from: Date,
    @Arg("to", () => Date) to: Date,
    @Arg("groupBy", () => SalesGroup) groupBy: SalesGroup,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.sales.stats(ctx.caller, { from, to, groupBy });
  }

  @Authorized("account:write")
  @Mutation(() => PurchasePayload, {
    description: "Buys access to a PURCHASED dataset: entitlement, sale and ledger entry in one transaction.",
  })
  async purchaseDataset(
    @Arg("datasetId", () => ID) datasetId: string,
    @Arg("idempotencyKey", () => String, { nullable: true }) idempotencyKey: string | null,
    @Ctx() ctx: Context,
  ) {
    const id = decodeGlobalId(datasetId, ["Dataset"]).id;
    const result = await ctx.services.credits.purchase(ctx.caller, id, idempotencyKey);
    return {
      purchase: Purchase.from(result.purchase),
      sale: Sale.from(result.sale),
      balance: safeInt(result.transaction.balanceAfter),
      replayed: result.replayed,
    };
  }

  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() sale: Sale, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", sale.datasetId);
  }

  @FieldResolver(() => Account, { nullable: true })
  async buyer(@Root() sale: Sale, @Ctx() ctx: Context) {
    return ctx.loaders.node("Account", sale.buyerAccountId);
  }

  @FieldResolver(() => Account, { nullable: true })
  async seller(@Root() sale: Sale, @Ctx() ctx: Context) {
    return ctx.loaders.node("Account", sale.sellerAccountId);
  }
}

@Resolver(() => Purchase)
export class PurchaseResolver {
  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() purchase: Purchase, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", purchase.datasetId);
  }
}
