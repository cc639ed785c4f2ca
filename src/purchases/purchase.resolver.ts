import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { PurchaseStatus, PurchaseTerm } from "../generated/prisma/client.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { Purchase, PurchaseConnection } from "../sales/sale.types.js";

@Resolver(() => Purchase)
export class EntitlementResolver {
  @Authorized("account:read")
  @Query(() => PurchaseConnection, {
    description:
      "What you bought: every entitlement with its term, start, expiry and renewal (admins: everyone's).",
  })
  async purchases(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("status", () => PurchaseStatus, { nullable: true }) status: PurchaseStatus | null,
    @Ctx() ctx: Context,
  ) {
    return toConnection(await ctx.services.purchases.page(ctx.caller, args, status), Purchase.from);
  }

  @Authorized("account:write")
  @Mutation(() => Purchase, {
    description: "Stops a MONTHLY purchase from renewing: it stays readable until expiresAt, then lapses.",
  })
  async cancelPurchase(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    const purchaseId = decodeGlobalId(id, ["Purchase"]).id;
    return Purchase.from(await ctx.services.purchases.setAutoRenew(ctx.caller, purchaseId, false));
  }

  @Authorized("account:write")
  @Mutation(() => Purchase, { description: "Renews a cancelled MONTHLY purchase again before it lapses." })
  async resumePurchase(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    const purchaseId = decodeGlobalId(id, ["Purchase"]).id;
    return Purchase.from(await ctx.services.purchases.setAutoRenew(ctx.caller, purchaseId, true));
  }

  @FieldResolver(() => PurchaseTerm, {
    description: "MONTHLY purchases expire and renew; ONE_TIME ones never end.",
  })
  term(@Root() purchase: Purchase): PurchaseTerm {
    return purchase.expiresAt === null ? PurchaseTerm.ONE_TIME : PurchaseTerm.MONTHLY;
  }

  @FieldResolver(() => Date, {
    nullable: true,
    description:
      "When the next term is charged from credits (some time before expiresAt); null when it will not renew.",
  })
  renewsAt(@Root() purchase: Purchase): Date | null {
    return purchase.status === "ACTIVE" && purchase.autoRenew ? purchase.expiresAt : null;
  }
}
