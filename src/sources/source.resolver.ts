import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  CreateSourceInput,
  Source,
  SourceConnection,
  SourceConnectionTest,
  UpdateSourceInput,
} from "./source.types.js";

const sourceId = (id: string) => decodeGlobalId(id, ["Source"]).id;

@Resolver(() => Source)
export class SourceResolver {
  @Authorized("pipelines:read")
  @Query(() => SourceConnection, { description: "Sources the caller may see, oldest first." })
  async sources(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    const page = await ctx.services.sources.sources.page(ctx.caller, args);
    return toConnection(page, Source.from);
  }

  @Authorized("PUBLISHER", "pipelines:write")
  @Mutation(() => Source, { description: "A new source; its secrets are encrypted and never returned." })
  async createSource(@Arg("input", () => CreateSourceInput) input: CreateSourceInput, @Ctx() ctx: Context) {
    return Source.from(await ctx.services.sources.create(ctx.caller, input));
  }

  @Authorized("PUBLISHER", "pipelines:write")
  @Mutation(() => Source, { description: "Changes name, config, secrets or schedule; the type stays." })
  async updateSource(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateSourceInput) input: UpdateSourceInput,
    @Ctx() ctx: Context,
  ) {
    return Source.from(await ctx.services.sources.update(ctx.caller, sourceId(id), input));
  }

  @Authorized("PUBLISHER", "pipelines:write")
  @Mutation(() => Source, {
    description: "Removes the source from every list; its pipelines' history stays.",
  })
  async deleteSource(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Source.from(await ctx.services.sources.delete(ctx.caller, sourceId(id)));
  }

  @Authorized("PUBLISHER", "pipelines:write")
  @Mutation(() => SourceConnectionTest, {
    description: "Reads up to 5 records with the stored settings. A source that fails answers ok: false.",
  })
  async testSourceConnection(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return ctx.services.sources.testConnection(ctx.caller, sourceId(id));
  }
}
