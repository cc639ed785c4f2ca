import { GraphQLJSON } from "graphql-scalars";
import { Arg, Authorized, Ctx, ID, Mutation, Resolver } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { decodeGlobalId, encodeGlobalId } from "../graphql/relay.js";
import type { CorrectionResult } from "./corrections.service.js";
import { IngestRecordsPayload, RecordCorrection } from "./ingest.types.js";

const datasetId = (id: string) => decodeGlobalId(id, ["Dataset"]).id;
const correction = (result: CorrectionResult) =>
  Object.assign(new RecordCorrection(), {
    dataset: Dataset.from(result.dataset),
    changedRows: result.changedRows,
  });

@Resolver()
export class IngestResolver {
  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => RecordCorrection, {
    description:
      "Writes whole records of the caller's dataset, replacing those with the same key (at most 1000 per call). One bad value refuses the call (BAD_USER_INPUT naming the record and column); nothing is written then.",
  })
  async upsertRecords(
    @Arg("datasetId", () => ID) id: string,
    @Arg("records", () => [GraphQLJSON]) records: unknown[],
    @Ctx() ctx: Context,
  ) {
    return correction(await ctx.services.corrections.upsert(ctx.caller, datasetId(id), records));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => RecordCorrection, {
    description:
      "Deletes records of the caller's dataset by key: each key an object of the key columns' values (at most 1000 per call). Readers never see them again.",
  })
  async deleteRecords(
    @Arg("datasetId", () => ID) id: string,
    @Arg("keys", () => [GraphQLJSON]) keys: unknown[],
    @Ctx() ctx: Context,
  ) {
    return correction(await ctx.services.corrections.delete(ctx.caller, datasetId(id), keys));
  }

  @Authorized("PUBLISHER", "pipelines:write")
  @Mutation(() => IngestRecordsPayload, {
    description:
      "Pushes records to the caller's dataset through its PUSH pipeline (same steps, quarantine and checks as any sync). The records are stored and a run is queued; its id comes back at once. At most INGEST_MAX_BYTES as JSON.",
  })
  async ingestRecords(
    @Arg("datasetId", () => ID) id: string,
    @Arg("records", () => [GraphQLJSON]) records: unknown[],
    @Ctx() ctx: Context,
  ) {
    const accepted = await ctx.services.push.ingestRecords(ctx.caller, datasetId(id), records);
    return Object.assign(new IngestRecordsPayload(), {
      runId: encodeGlobalId("PipelineRun", accepted.runId),
      records: accepted.records,
    });
  }
}
