import { Args, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { Account, AccountConnection } from "./account.types.js";

@Resolver(() => Account)
export class AccountResolver {
  @Query(() => AccountConnection, { description: "Accounts the caller may see, oldest first." })
  async accounts(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.accounts.accounts.page(ctx.caller, args), Account.from);
  }
}
