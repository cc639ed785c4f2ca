import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, encodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  CatalogArgs,
  Category,
  CreateDatasetInput,
  Dataset,
  DatasetColumnInput,
  DatasetConnection,
  Publisher,
  UpdateDatasetInput,
} from "./catalog.types.js";

const datasetId = (id: string) => decodeGlobalId(id, ["Dataset"]).id;

@Resolver(() => Dataset)
export class CatalogResolver {
  @Query(() => DatasetConnection, {
    description: "The catalogue: published datasets (and, for publishers, their own), searched and sorted.",
  })
  async datasets(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Args(() => CatalogArgs) query: CatalogArgs,
    @Ctx() ctx: Context,
  ) {
    const publisherId = query.publisher ? await ctx.services.accounts.idBySlug(query.publisher) : null;
    if (query.publisher && !publisherId)
      return toConnection(
        { items: [], cursors: [], hasNextPage: false, hasPreviousPage: false },
        Dataset.from,
      );
    const page = await ctx.services.catalog.list(ctx.caller, args, {
      search: query.search,
      category: query.category,
      publisherId,
      sort: query.orderBy,
      status: query.status,
    });
    return toConnection(page, Dataset.from);
  }

  @Query(() => Dataset, { nullable: true })
  async dataset(@Arg("slug", () => String) slug: string, @Ctx() ctx: Context) {
    const row = await ctx.services.catalog.bySlug(ctx.caller, slug);
    return row && Dataset.from(row);
  }

  @Query(() => [Category], { description: "Categories of published datasets, with counts." })
  async categories(@Ctx() ctx: Context) {
    const categories = await ctx.services.catalog.categories();
    return categories.map((c) => ({ id: encodeGlobalId("Category", c.name), ...c }));
  }

  @FieldResolver(() => Publisher, { nullable: true })
  async publisher(@Root() dataset: Dataset, @Ctx() ctx: Context) {
    const profile = await ctx.loaders.publisher.load(dataset.accountId);
    return profile && Publisher.from(profile);
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset, { description: "A new DRAFT dataset with its own ClickHouse table." })
  async createDataset(
    @Arg("input", () => CreateDatasetInput) input: CreateDatasetInput,
    @Ctx() ctx: Context,
  ) {
    return Dataset.from(await ctx.services.catalog.create(ctx.caller, input));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset, {
    description: "Changes metadata and price; the column schema only grows (addDatasetColumns).",
  })
  async updateDataset(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateDatasetInput) input: UpdateDatasetInput,
    @Ctx() ctx: Context,
  ) {
    return Dataset.from(await ctx.services.catalog.update(ctx.caller, datasetId(id), input));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset, { description: "Adds nullable columns. Other schema changes are refused." })
  async addDatasetColumns(
    @Arg("id", () => ID) id: string,
    @Arg("columns", () => [DatasetColumnInput]) columns: DatasetColumnInput[],
    @Ctx() ctx: Context,
  ) {
    return Dataset.from(await ctx.services.catalog.addColumns(ctx.caller, datasetId(id), columns));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset)
  async publishDataset(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Dataset.from(await ctx.services.catalog.setStatus(ctx.caller, datasetId(id), "PUBLISHED"));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset)
  async unpublishDataset(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Dataset.from(await ctx.services.catalog.setStatus(ctx.caller, datasetId(id), "UNPUBLISHED"));
  }

  @Authorized("PUBLISHER", "datasets:write")
  @Mutation(() => Dataset, { description: "Final: the dataset leaves the catalogue for good." })
  async archiveDataset(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Dataset.from(await ctx.services.catalog.setStatus(ctx.caller, datasetId(id), "ARCHIVED"));
  }
}
