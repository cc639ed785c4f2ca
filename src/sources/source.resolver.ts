import { Args, Authorized, Ctx, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { Source, SourceConnection } from "./source.types.js";

@Resolver(() => Source)
export class SourceResolver {
  @Authorized("pipelines:read")
  @Query(() => SourceConnection, { description: "Sources the caller may see, oldest first." })
  async sources(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    const page = await ctx.services.sources.sources.page(ctx.caller, args, { deletedAt: null });
    return toConnection(page, Source.from);
  }
}
