import { Arg, Args, Authorized, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { AdminLogEntry, AdminLogEntryConnection } from "./admin.types.js";

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
}
