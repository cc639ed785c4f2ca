import { Args, Authorized, Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { Account } from "../identity/account.types.js";
import { Sale, SaleConnection } from "./sale.types.js";

@Resolver(() => Sale)
export class SaleResolver {
  @Authorized("account:read")
  @Query(() => SaleConnection, { description: "Sales the caller may see, oldest first." })
  async sales(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.sales.sales.page(ctx.caller, args), Sale.from);
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
