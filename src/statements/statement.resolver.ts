import { Arg, Authorized, Ctx, ID, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { decodeGlobalId } from "../graphql/relay.js";
import { Statement } from "./statement.types.js";

@Resolver(() => Statement)
export class StatementResolver {
  @Authorized("account:read")
  @Query(() => Statement, {
    description: "Your monthly statement: purchases, reads by dataset and top-ups; sales, fees and payouts.",
  })
  async statement(
    @Arg("month", () => String, { description: "YYYY-MM (UTC)." }) month: string,
    @Arg("accountId", () => ID, { nullable: true, description: "Admins: another account." })
    accountId: string | null,
    @Ctx() ctx: Context,
  ) {
    const target = accountId ? decodeGlobalId(accountId, ["Account"]).id : null;
    return Statement.from(await ctx.services.statements.statement(ctx.caller, month, target));
  }
}
