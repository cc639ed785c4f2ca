import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Int, Mutation, Resolver, Root } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { decodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  AggregateArgsType,
  AggregateRowConnection,
  DataRecord,
  DataRecordConnection,
  DatasetSample,
  Quote,
  RecordFilterInput,
  RecordsArgs,
} from "./records.types.js";

const rawId = (dataset: Dataset) => decodeGlobalId(dataset.id, ["Dataset"]).id;
const readContext = (ctx: Context) => ({ requestId: ctx.requestId, meter: ctx.meter, log: ctx.log });

@Resolver(() => Dataset)
export class RecordsResolver {
  @Authorized("records:read")
  @FieldResolver(() => DataRecordConnection, {
    description:
      "Records, keyset-paged. METERED datasets cost ceil(records / 100) × pricePer100Records (at least 1 when any record is returned); the price of `first` is reserved before reading.",
  })
  async records(@Root() dataset: Dataset, @Args(() => RecordsArgs) args: RecordsArgs, @Ctx() ctx: Context) {
    const page = await ctx.services.reads.page(ctx.caller, dataset.row, args, readContext(ctx));
    return Object.assign(
      toConnection(page, (row) => Object.assign(new DataRecord(), row)),
      {
        dataset: dataset.row,
        filter: args.filter ?? null,
      },
    );
  }

  @FieldResolver(() => DatasetSample, {
    nullable: true,
    description:
      "The free sample, for anyone who can see the dataset; null when none is offered. Never charged.",
  })
  async sample(@Root() dataset: Dataset, @Ctx() ctx: Context) {
    const sample = await ctx.services.reads.sample(ctx.caller, rawId(dataset));
    if (!sample) return null;
    return Object.assign(new DatasetSample(), {
      isSample: true,
      size: sample.size,
      filter: sample.filter as Record<string, unknown> | null,
      rows: sample.rows.map((row) => Object.assign(new DataRecord(), row)),
    });
  }

  @Authorized("datasets:write")
  @Mutation(() => Dataset, {
    description: "Publishers: offer a free sample of `rows` rows matching `filter`; rows null removes it.",
  })
  async setDatasetSample(
    @Arg("id", () => ID) id: string,
    @Arg("rows", () => Int, { nullable: true }) rows: number | null,
    @Arg("filter", () => RecordFilterInput, { nullable: true }) filter: RecordFilterInput | null,
    @Ctx() ctx: Context,
  ) {
    const raw = decodeGlobalId(id, ["Dataset"]).id;
    return Dataset.from(await ctx.services.reads.setSample(ctx.caller, raw, rows, filter));
  }

  @Authorized("records:read")
  @FieldResolver(() => DataRecord, {
    nullable: true,
    description: "One record by key. METERED: costs the price of 100 records when found.",
  })
  async record(@Root() dataset: Dataset, @Arg("key", () => String) key: string, @Ctx() ctx: Context) {
    const row = await ctx.services.reads.record(ctx.caller, dataset.row, key, readContext(ctx));
    return row && Object.assign(new DataRecord(), row);
  }

  @Authorized("records:read")
  @FieldResolver(() => AggregateRowConnection, {
    description:
      "Grouped metrics (count, sum, avg, min, max, uniq, quantile). METERED: the price of 100 records.",
  })
  async aggregate(
    @Root() dataset: Dataset,
    @Args(() => AggregateArgsType) args: AggregateArgsType,
    @Ctx() ctx: Context,
  ) {
    const page = await ctx.services.reads.aggregate(ctx.caller, dataset.row, args, readContext(ctx));
    return toConnection(page, (row) => row);
  }

  @Authorized("records:read")
  @FieldResolver(() => Quote, { description: "What records(first:, filter:) would cost now. Free." })
  async quote(
    @Root() dataset: Dataset,
    @Arg("first", () => Int) first: number,
    @Arg("filter", () => RecordFilterInput, { nullable: true }) filter: RecordFilterInput | null,
    @Ctx() ctx: Context,
  ) {
    return ctx.services.reads.quote(ctx.caller, dataset.row, first, filter);
  }
}

@Resolver(() => DataRecordConnection)
export class RecordConnectionResolver {
  @FieldResolver(() => Int, { description: "Rows matching the filter. Counted only when asked for; free." })
  async totalCount(@Root() connection: DataRecordConnection, @Ctx() ctx: Context) {
    return ctx.services.reads.count(ctx.caller, connection.dataset, connection.filter);
  }
}
