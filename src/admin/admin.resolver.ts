import {
  Arg,
  Args,
  Authorized,
  Ctx,
  Field,
  ID,
  InputType,
  Int,
  Mutation,
  Query,
  Resolver,
} from "type-graphql";
import { PlanCode, UserRole } from "../generated/prisma/client.js";
import { decodeGlobalId } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";
import { Plan } from "../identity/account.types.js";
import { User } from "../identity/auth.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { AdminLogEntry, AdminLogEntryConnection } from "./admin.types.js";

@InputType({ description: "Plan changes: a field left out is kept; null removes a quota." })
export class PlanChangesInput {
  @Field(() => Int, { nullable: true })
  requestsPerMinute?: number | null;

  @Field(() => Int, { nullable: true })
  hourlyQuota?: number | null;

  @Field(() => Int, { nullable: true })
  monthlyQuota?: number | null;

  @Field(() => SafeInt, { nullable: true, description: "Credits granted to a new account on the plan." })
  startingCredits?: number | null;
}

@Resolver(() => AdminLogEntry)
export class AdminResolver {
  @Authorized("ADMIN", "admin")
  @Query(() => AdminLogEntryConnection, { description: "Admin: what admins did, oldest first." })
  async adminLog(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("action", () => String, { nullable: true }) action: string | null,
    @Ctx() ctx: Context,
  ) {
    return toConnection(await ctx.services.admin.logPage(ctx.caller, args, action), AdminLogEntry.from);
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => User, { description: "Admin: promote or demote a user. Audited." })
  async setUserRole(
    @Arg("userId", () => ID) userId: string,
    @Arg("role", () => UserRole) role: UserRole,
    @Ctx() ctx: Context,
  ) {
    const raw = decodeGlobalId(userId, ["User"]).id;
    return User.from(await ctx.services.admin.setUserRole(ctx.caller, raw, role));
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => Plan, { description: "Admin: change a plan's rate, quotas and starting credits. Audited." })
  async updatePlan(
    @Arg("code", () => PlanCode) code: PlanCode,
    @Arg("changes", () => PlanChangesInput) changes: PlanChangesInput,
    @Ctx() ctx: Context,
  ) {
    return Plan.from(await ctx.services.admin.updatePlan(ctx.caller, code, { ...changes }));
  }
}
