import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from "type-graphql";
import { safeInt } from "../graphql/scalars.js";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  ApiKey,
  ApiKeyConnection,
  ApiKeyLimitsInput,
  ApiKeySecret,
  ApiKeySpend,
  CreateApiKeyInput,
  RotateApiKeyArgs,
} from "./api-key.types.js";

const keyId = (id: string) => decodeGlobalId(id, ["ApiKey"]).id;
const datasetId = (id: string) => decodeGlobalId(id, ["Dataset"]).id;

@Resolver(() => ApiKey)
export class ApiKeyResolver {
  @Authorized("account:read")
  @Query(() => ApiKeyConnection, { description: "Your account's API keys (never their secrets)." })
  async apiKeys(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    return toConnection(await ctx.services.apiKeys.keys.page(ctx.caller, args), ApiKey.from);
  }

  @Authorized("account:write")
  @Mutation(() => ApiKeySecret)
  async createApiKey(@Arg("input", () => CreateApiKeyInput) input: CreateApiKeyInput, @Ctx() ctx: Context) {
    const { apiKey, ...secrets } = await ctx.services.apiKeys.create(ctx.caller, {
      ...input,
      datasetIds: input.datasetIds?.map(datasetId),
    });
    return { apiKey: ApiKey.from(apiKey), ...secrets };
  }

  @Authorized("account:write")
  @Mutation(() => ApiKey, {
    description:
      "Sets the key's spend limits and datasets (replaced whole); they apply from its next request.",
  })
  async setApiKeyLimits(
    @Arg("id", () => ID) id: string,
    @Arg("limits", () => ApiKeyLimitsInput) limits: ApiKeyLimitsInput,
    @Ctx() ctx: Context,
  ) {
    const apiKey = await ctx.services.apiKeys.setLimits(ctx.caller, keyId(id), {
      ...limits,
      datasetIds: limits.datasetIds?.map(datasetId),
    });
    return ApiKey.from(apiKey);
  }

  @FieldResolver(() => ApiKeySpend, { description: "What it spent today and this month (UTC)." })
  async spend(@Root() key: ApiKey, @Ctx() ctx: Context) {
    const spend = await ctx.services.apiKeys.spend(key.rawId);
    return { today: safeInt(spend.today), thisMonth: safeInt(spend.thisMonth) };
  }

  @Authorized("account:write")
  @Mutation(() => ApiKey, { description: "Stops the key at once." })
  async revokeApiKey(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return ApiKey.from(await ctx.services.apiKeys.revoke(ctx.caller, keyId(id)));
  }

  @Authorized("account:write")
  @Mutation(() => ApiKeySecret, { description: "A replacement key; the old one works until its graceUntil." })
  async rotateApiKey(@Args(() => RotateApiKeyArgs) args: RotateApiKeyArgs, @Ctx() ctx: Context) {
    const { apiKey, secret } = await ctx.services.apiKeys.rotate(
      ctx.caller,
      keyId(args.id),
      args.graceSeconds,
    );
    return { apiKey: ApiKey.from(apiKey), secret };
  }
}
