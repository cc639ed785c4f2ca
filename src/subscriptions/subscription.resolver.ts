import {
  Arg,
  Ctx,
  FieldResolver,
  ID,
  Resolver,
  Root,
  Subscription,
  type SubscribeResolverData,
} from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { DatasetUpdated, DeliveryUpdated, PipelineRunUpdated } from "../events/events.js";
import type { Context } from "../graphql/context.js";
import { Loaders } from "../graphql/loaders.js";
import { decodeGlobalId } from "../graphql/relay.js";
import { PipelineRun } from "../pipelines/pipeline.types.js";
import { DatasetUpdate, DeliveryUpdate, PipelineRunUpdate } from "./subscription.types.js";

/** The raw id behind a subscription's id argument, and the caller's live service. */
function subscribing(data: SubscribeResolverData, argument: string, type: string) {
  const context = data.context as Context;
  const id = decodeGlobalId(String(data.args[argument]), [type]).id;
  return { live: context.live, caller: context.caller, id };
}

/**
 * Each event is executed like a request of its own: loaders made for the previous event would
 * answer nested objects (`dataset`, `run`) as they were then.
 */
function freshLoaders(ctx: Context): void {
  ctx.loaders = new Loaders(ctx.services, ctx.caller);
}

@Resolver()
export class SubscriptionResolver {
  @Subscription(() => DatasetUpdate, {
    description:
      "Every change of a dataset's records, for callers who may read them: the publisher, an admin, " +
      "buyers of a PURCHASED dataset with an active purchase, anyone for a published OPEN or METERED one.",
    subscribe: (data) => {
      const { live, caller, id } = subscribing(data, "datasetId", "Dataset");
      return live.datasetUpdated(caller, id);
    },
  })
  datasetUpdated(
    @Root() event: DatasetUpdated,
    @Arg("datasetId", () => ID) _datasetId: string,
    @Ctx() ctx: Context,
  ): DatasetUpdate {
    freshLoaders(ctx);
    return DatasetUpdate.from(event);
  }

  @Subscription(() => PipelineRunUpdate, {
    description: "Status and progress of a pipeline's runs, for its publisher (or an admin).",
    subscribe: (data) => {
      const { live, caller, id } = subscribing(data, "pipelineId", "Pipeline");
      return live.pipelineRunUpdated(caller, id);
    },
  })
  pipelineRunUpdated(
    @Root() event: PipelineRunUpdated,
    @Arg("pipelineId", () => ID) _pipelineId: string,
    @Ctx() ctx: Context,
  ): PipelineRunUpdate {
    freshLoaders(ctx);
    return PipelineRunUpdate.from(event);
  }

  @Subscription(() => DeliveryUpdate, {
    description: "A delivery's state and attempts, for the account that owns it (or an admin).",
    subscribe: (data) => {
      const { live, caller, id } = subscribing(data, "deliveryId", "Delivery");
      return live.deliveryUpdated(caller, id);
    },
  })
  deliveryUpdated(
    @Root() event: DeliveryUpdated,
    @Arg("deliveryId", () => ID) _deliveryId: string,
    @Ctx() ctx: Context,
  ): DeliveryUpdate {
    freshLoaders(ctx);
    return DeliveryUpdate.from(event);
  }
}

@Resolver(() => DatasetUpdate)
export class DatasetUpdateResolver {
  @FieldResolver(() => Dataset, { nullable: true, description: "The dataset as it is now." })
  async dataset(@Root() update: DatasetUpdate, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", update.rawDatasetId);
  }
}

@Resolver(() => PipelineRunUpdate)
export class PipelineRunUpdateResolver {
  @FieldResolver(() => PipelineRun, { nullable: true, description: "The run as it is now." })
  async run(@Root() update: PipelineRunUpdate, @Ctx() ctx: Context) {
    return ctx.loaders.node("PipelineRun", update.rawRunId);
  }
}
