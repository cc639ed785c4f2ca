import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { safeInt } from "../graphql/scalars.js";
import { Source } from "../sources/source.types.js";
import {
  CreatePipelineInput,
  Pipeline,
  PipelineConnection,
  PipelineLog,
  PipelineLogConnection,
  PipelineRun,
  PipelineRunConnection,
  RejectedRow,
  RejectedRowConnection,
  SourceMetrics,
  UpdatePipelineInput,
} from "./pipeline.types.js";

const pipelineId = (id: string) => decodeGlobalId(id, ["Pipeline"]).id;
const WRITE = ["PUBLISHER", "pipelines:write"];

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

  @Authorized(...WRITE)
  @Mutation(() => Pipeline, {
    description:
      "A pipeline from one of the caller's sources into one of its datasets; steps are checked against the dataset.",
  })
  async createPipeline(
    @Arg("input", () => CreatePipelineInput) input: CreatePipelineInput,
    @Ctx() ctx: Context,
  ) {
    const created = await ctx.services.pipelines.create(ctx.caller, {
      ...input,
      sourceId: decodeGlobalId(input.sourceId, ["Source"]).id,
      datasetId: decodeGlobalId(input.datasetId, ["Dataset"]).id,
    });
    return Pipeline.from(created);
  }

  @Authorized(...WRITE)
  @Mutation(() => Pipeline)
  async updatePipeline(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdatePipelineInput) input: UpdatePipelineInput,
    @Ctx() ctx: Context,
  ) {
    return Pipeline.from(await ctx.services.pipelines.update(ctx.caller, pipelineId(id), input));
  }

  @Authorized(...WRITE)
  @Mutation(() => Pipeline, {
    description: "Deletes the pipeline, its runs and logs; CONFLICT while a run is going.",
  })
  async deletePipeline(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Pipeline.from(await ctx.services.pipelines.delete(ctx.caller, pipelineId(id)));
  }

  @Authorized(...WRITE)
  @Mutation(() => PipelineRun, {
    description: "Queues a run now. CONFLICT (extensions.runId) while another run is queued or running.",
  })
  async runPipeline(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return PipelineRun.from(await ctx.services.pipelines.run(ctx.caller, pipelineId(id)));
  }

  @Authorized(...WRITE)
  @Mutation(() => Pipeline, { description: "Runs the pipeline on its cron schedule from now on." })
  async startPipeline(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Pipeline.from(await ctx.services.pipelines.start(ctx.caller, pipelineId(id)));
  }

  @Authorized(...WRITE)
  @Mutation(() => Pipeline, {
    description: "Stops the schedule and cancels a queued or running run (the dataset stays as it was).",
  })
  async stopPipeline(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Pipeline.from(await ctx.services.pipelines.stop(ctx.caller, pipelineId(id)));
  }

  @Authorized(...WRITE)
  @Mutation(() => [PipelineRun], {
    description: "Runs every started pipeline of the source now (a run already going is returned as is).",
  })
  async syncSource(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    const runs = await ctx.services.pipelines.syncSource(ctx.caller, decodeGlobalId(id, ["Source"]).id);
    return runs.map(PipelineRun.from);
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

  @FieldResolver(() => PipelineRun, { nullable: true, description: "The most recent run." })
  async lastRun(@Root() pipeline: Pipeline, @Ctx() ctx: Context) {
    const run = await ctx.services.pipelines.lastRun(decodeGlobalId(pipeline.id).id);
    return run ? PipelineRun.from(run) : null;
  }

  @FieldResolver(() => PipelineLogConnection, { description: "Log lines of every run, oldest first." })
  async logs(
    @Root() pipeline: Pipeline,
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Ctx() ctx: Context,
  ) {
    const filter = { pipelineId: decodeGlobalId(pipeline.id).id };
    return toConnection(await ctx.services.pipelines.logs.page(ctx.caller, args, filter), PipelineLog.from);
  }
}

@Resolver(() => PipelineRun)
export class PipelineRunResolver {
  @FieldResolver(() => Pipeline, { nullable: true })
  async pipeline(@Root() run: PipelineRun, @Ctx() ctx: Context) {
    return ctx.loaders.node("Pipeline", run.pipelineId);
  }

  @FieldResolver(() => PipelineLogConnection, { description: "This run's log lines, oldest first." })
  async logs(
    @Root() run: PipelineRun,
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Ctx() ctx: Context,
  ) {
    const filter = { runId: decodeGlobalId(run.id).id };
    return toConnection(await ctx.services.pipelines.logs.page(ctx.caller, args, filter), PipelineLog.from);
  }

  @FieldResolver(() => RejectedRowConnection, {
    description: "Rows this run could not load (the quarantine), by origin and row number.",
  })
  async rejectedRows(
    @Root() run: PipelineRun,
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Ctx() ctx: Context,
  ) {
    const page = await ctx.services.pipelines.rejectedRows(
      { id: decodeGlobalId(run.id).id, pipelineId: run.pipelineId },
      args,
    );
    return toConnection(page, (row) => Object.assign(new RejectedRow(), row));
  }
}

@Resolver(() => Source)
export class SourceMetricsResolver {
  @FieldResolver(() => SourceMetrics, { description: "How this source's syncs have gone." })
  async metrics(@Root() source: Source, @Ctx() ctx: Context) {
    const m = await ctx.services.pipelines.sourceMetrics(decodeGlobalId(source.id).id);
    return Object.assign(new SourceMetrics(), {
      ...m,
      rowsWritten: safeInt(m.rowsWritten),
      rowsRejected: safeInt(m.rowsRejected),
      stream: m.stream && {
        ...m.stream,
        lastMessageAt: m.stream.lastMessageAt ? new Date(m.stream.lastMessageAt) : null,
        updatedAt: new Date(m.stream.updatedAt),
      },
    });
  }
}
