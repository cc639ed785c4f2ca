import { Args, Authorized, Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { Account } from "../identity/account.types.js";
import { CreditTransaction, CreditTransactionConnection } from "./credit.types.js";

@Resolver(() => CreditTransaction)
export class CreditResolver {
  @Authorized("account:read")
  @Query(() => CreditTransactionConnection, { description: "Ledger entries, oldest first." })
  async creditTransactions(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    const page = await ctx.services.credits.transactions.page(ctx.caller, args);
    return toConnection(page, CreditTransaction.from);
  }

  @FieldResolver(() => Account, { nullable: true })
  async account(@Root() transaction: CreditTransaction, @Ctx() ctx: Context) {
    return ctx.loaders.node("Account", transaction.accountId);
  }
}
