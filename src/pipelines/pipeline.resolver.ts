import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Query, Resolver, Root } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { Source } from "../sources/source.types.js";
import { Pipeline, PipelineConnection, PipelineRun, PipelineRunConnection } from "./pipeline.types.js";

@Resolver(() => Pipeline)
export class PipelineResolver {
  @Authorized("pipelines:read")
  @Query(() => PipelineConnection, { description: "Pipelines the caller may see, oldest first." })
  async pipelines(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.pipelines.pipelines.page(ctx.caller, args), Pipeline.from);
  }

  @Authorized("pipelines:read")
  @Query(() => PipelineRunConnection, { description: "Pipeline runs, oldest first." })
  async pipelineRuns(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("pipelineId", () => ID, { nullable: true, description: "Only this pipeline's runs." })
    pipelineId: string | null,
    @Ctx() ctx: Context,
  ) {
    const filter = pipelineId ? { pipelineId: decodeGlobalId(pipelineId, ["Pipeline"]).id } : {};
    return toConnection(await ctx.services.pipelines.runs.page(ctx.caller, args, filter), PipelineRun.from);
  }

  @FieldResolver(() => Source, { nullable: true })
  async source(@Root() pipeline: Pipeline, @Ctx() ctx: Context) {
    return ctx.loaders.node("Source", pipeline.sourceId);
  }

  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() pipeline: Pipeline, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", pipeline.datasetId);
  }

  @FieldResolver(() => PipelineRunConnection, { description: "This pipeline's runs, oldest first." })
  async runs(
    @Root() pipeline: Pipeline,
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Ctx() ctx: Context,
  ) {
    const filter = { pipelineId: decodeGlobalId(pipeline.id).id };
    return toConnection(await ctx.services.pipelines.runs.page(ctx.caller, args, filter), PipelineRun.from);
  }
}

@Resolver(() => PipelineRun)
export class PipelineRunResolver {
  @FieldResolver(() => Pipeline, { nullable: true })
  async pipeline(@Root() run: PipelineRun, @Ctx() ctx: Context) {
    return ctx.loaders.node("Pipeline", run.pipelineId);
  }
}
