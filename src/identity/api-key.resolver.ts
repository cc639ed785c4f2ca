import { Arg, Args, Authorized, Ctx, ID, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import {
  ApiKey,
  ApiKeyConnection,
  ApiKeySecret,
  CreateApiKeyInput,
  RotateApiKeyArgs,
} from "./api-key.types.js";

const keyId = (id: string) => decodeGlobalId(id, ["ApiKey"]).id;

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
    const { apiKey, ...secrets } = await ctx.services.apiKeys.create(ctx.caller, input);
    return { apiKey: ApiKey.from(apiKey), ...secrets };
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
