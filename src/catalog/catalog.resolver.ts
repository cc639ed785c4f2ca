import { Args, Ctx, FieldResolver, Query, Resolver, Root } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, toConnection } from "../graphql/relay.js";
import { Dataset, DatasetConnection, Publisher } from "./catalog.types.js";

@Resolver(() => Dataset)
export class CatalogResolver {
  @Query(() => DatasetConnection, { description: "Datasets the caller may see, oldest first." })
  async datasets(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.catalog.datasets.page(ctx.caller, args), Dataset.from);
  }

  @FieldResolver(() => Publisher, { nullable: true })
  async publisher(@Root() dataset: Dataset, @Ctx() ctx: Context) {
    return ctx.loaders.publisher.load(dataset.accountId);
  }
}
