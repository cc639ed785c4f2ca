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
import { PlanCode } from "../generated/prisma/client.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { Account, AccountConnection, Plan } from "./account.types.js";

const accountId = (id: string) => decodeGlobalId(id, ["Account"]).id;

@Resolver(() => Account)
export class AccountResolver {
  @Authorized("account:read")
  @Query(() => AccountConnection, {
    description: "Your account; admins see every account and can search by name, slug or email.",
  })
  async accounts(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("search", () => String, { nullable: true }) search: string | null,
    @Ctx() ctx: Context,
  ) {
    return toConnection(await ctx.services.accounts.list(ctx.caller, args, search), Account.from);
  }

  @FieldResolver(() => Plan)
  async plan(@Root() account: Account, @Ctx() ctx: Context) {
    const plan = await ctx.loaders.plan.load(account.planId);
    return plan && Plan.from(plan);
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => Account, {
    description: "Admin: move an account to a plan (ENTERPRISE may set its own rate).",
  })
  async setAccountPlan(
    @Arg("accountId", () => ID) id: string,
    @Arg("plan", () => PlanCode) plan: PlanCode,
    @Arg("rateLimitPerMinute", () => Int, { nullable: true }) rateLimitPerMinute: number | null,
    @Ctx() ctx: Context,
  ) {
    return Account.from(
      await ctx.services.accounts.setPlan(ctx.caller, accountId(id), plan, rateLimitPerMinute),
    );
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => Account, { description: "Admin: its keys and sessions stop working at once." })
  async suspendAccount(@Arg("accountId", () => ID) id: string, @Ctx() ctx: Context) {
    return Account.from(await ctx.services.accounts.suspend(ctx.caller, accountId(id)));
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => Account)
  async reinstateAccount(@Arg("accountId", () => ID) id: string, @Ctx() ctx: Context) {
    return Account.from(await ctx.services.accounts.reinstate(ctx.caller, accountId(id)));
  }
}
