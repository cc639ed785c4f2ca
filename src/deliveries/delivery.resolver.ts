import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
} from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import type { DeliveryDispatch as Dispatch, DeliveryWithSecret as WithSecret } from "./delivery.service.js";
import {
  CreateDeliveryInput,
  Delivery,
  DeliveryAttempt,
  DeliveryAttemptConnection,
  DeliveryConnection,
  DeliveryDispatch,
  DeliveryWithSecret,
  UpdateDeliveryInput,
} from "./delivery.types.js";

const deliveryId = (id: string) => decodeGlobalId(id, ["Delivery"]).id;
const withSecret = ({ delivery, signingSecret }: WithSecret) => ({
  delivery: Delivery.from(delivery),
  signingSecret,
});
const dispatch = ({ delivery, eventId }: Dispatch) => ({ delivery: Delivery.from(delivery), eventId });

@Resolver(() => Delivery)
export class DeliveryResolver {
  @Authorized("account:read")
  @Query(() => DeliveryConnection, { description: "The caller's deliveries, oldest first." })
  async deliveries(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("datasetId", () => ID, { nullable: true, description: "Only those of this dataset." })
    datasetId: string | null,
    @Ctx() ctx: Context,
  ) {
    const filter = datasetId ? { datasetId: decodeGlobalId(datasetId, ["Dataset"]).id } : {};
    return toConnection(
      await ctx.services.deliveries.deliveries.page(ctx.caller, args, filter),
      Delivery.from,
    );
  }

  @Authorized("account:write")
  @Mutation(() => DeliveryWithSecret, {
    description:
      "A webhook or file drop for a dataset the account may read. A webhook's signing secret is returned here only.",
  })
  async createDelivery(
    @Arg("input", () => CreateDeliveryInput) input: CreateDeliveryInput,
    @Ctx() ctx: Context,
  ) {
    const datasetId = decodeGlobalId(input.datasetId, ["Dataset"]).id;
    return withSecret(await ctx.services.deliveries.create(ctx.caller, { ...input, datasetId }));
  }

  @Authorized("account:write")
  @Mutation(() => Delivery)
  async updateDelivery(
    @Arg("id", () => ID) id: string,
    @Arg("input", () => UpdateDeliveryInput) input: UpdateDeliveryInput,
    @Ctx() ctx: Context,
  ) {
    return Delivery.from(await ctx.services.deliveries.update(ctx.caller, deliveryId(id), input));
  }

  @Authorized("account:write")
  @Mutation(() => Delivery, { description: "Removes the delivery and its attempts' history." })
  async deleteDelivery(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Delivery.from(await ctx.services.deliveries.delete(ctx.caller, deliveryId(id)));
  }

  @Authorized("account:write")
  @Mutation(() => Delivery, { description: "Stops sending; events that happen while paused are not sent." })
  async pauseDelivery(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Delivery.from(await ctx.services.deliveries.pause(ctx.caller, deliveryId(id)));
  }

  @Authorized("account:write")
  @Mutation(() => Delivery, {
    description:
      "Re-enables a PAUSED or DISABLED delivery (failures reset) and retries the events it still owes now.",
  })
  async resumeDelivery(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return Delivery.from(await ctx.services.deliveries.resume(ctx.caller, deliveryId(id)));
  }

  @Authorized("account:write")
  @Mutation(() => DeliveryDispatch, {
    description: "Sends a dataset.updated event about the dataset as it is now.",
  })
  async triggerDelivery(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return dispatch(await ctx.services.deliveries.trigger(ctx.caller, deliveryId(id)));
  }

  @Authorized("account:write")
  @Mutation(() => DeliveryWithSecret, {
    description:
      "A new signing secret (returned once); the old one keeps signing alongside it for graceSeconds.",
  })
  async rotateDeliverySecret(
    @Arg("id", () => ID) id: string,
    @Arg("graceSeconds", () => Int, { defaultValue: 86_400 }) graceSeconds: number,
    @Ctx() ctx: Context,
  ) {
    return withSecret(await ctx.services.deliveries.rotateSecret(ctx.caller, deliveryId(id), graceSeconds));
  }

  @Authorized("account:write")
  @Mutation(() => DeliveryDispatch, {
    description: "Sends an attempt's event again: same webhook-id, same body.",
  })
  async redeliver(@Arg("attemptId", () => ID) attemptId: string, @Ctx() ctx: Context) {
    const id = decodeGlobalId(attemptId, ["DeliveryAttempt"]).id;
    return dispatch(await ctx.services.deliveries.redeliver(ctx.caller, id));
  }

  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() delivery: Delivery, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", delivery.datasetId);
  }

  @FieldResolver(() => DeliveryAttemptConnection, { description: "Every try, oldest first." })
  async attempts(
    @Root() delivery: Delivery,
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Ctx() ctx: Context,
  ) {
    const filter = { deliveryId: decodeGlobalId(delivery.id).id };
    return toConnection(
      await ctx.services.deliveries.attempts.page(ctx.caller, args, filter),
      DeliveryAttempt.from,
    );
  }
}

@Resolver(() => DeliveryAttempt)
export class DeliveryAttemptResolver {
  @FieldResolver(() => Delivery, { nullable: true })
  async delivery(@Root() attempt: DeliveryAttempt, @Ctx() ctx: Context) {
    return ctx.loaders.node("Delivery", attempt.deliveryId);
  }
}
