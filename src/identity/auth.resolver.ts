import { Arg, Authorized, Ctx, Mutation, Query, Resolver } from "type-graphql";
import type { Context } from "../graphql/context.js";
import { encodeGlobalId } from "../graphql/relay.js";
import { isAuthenticated } from "./caller.js";
import { Account } from "./account.types.js";
import { ApiKey } from "./api-key.types.js";
import { LoginPayload, SignupInput, SignupPayload, User, Viewer } from "./auth.types.js";

@Resolver()
export class AuthResolver {
  @Mutation(() => SignupPayload, {
    description: "Creates an account (buyer by default), its first user and API key, with starting credits.",
  })
  async signup(@Arg("input", () => SignupInput) input: SignupInput, @Ctx() ctx: Context) {
    const { account, user, apiKey, secret } = await ctx.services.auth.signup({
      ...input,
      role: input.role ?? undefined,
    });
    return {
      user: User.from(user),
      account: Account.from(account),
      apiKey: ApiKey.from(apiKey),
      apiKeySecret: secret,
    };
  }

  @Mutation(() => LoginPayload, { description: "Dashboard login: a short-lived bearer token." })
  async login(
    @Arg("email", () => String) email: string,
    @Arg("password", () => String) password: string,
    @Ctx() ctx: Context,
  ) {
    const session = await ctx.services.auth.login(email, password);
    return { token: session.token, expiresAt: session.expiresAt, user: User.from(session.user) };
  }

  @Authorized("account:read")
  @Query(() => Viewer, { description: "The caller (needs the account:read scope)." })
  async me(@Ctx() ctx: Context) {
    const { user, account } = await ctx.services.accounts.me(ctx.caller);
    const caller = ctx.caller;
    return {
      id: encodeGlobalId("Viewer", caller.kind === "apiKey" ? `key:${caller.apiKeyId}` : `user:${user.id}`),
      user: User.from(user),
      account: Account.from(account),
      scopes: isAuthenticated(caller) ? [...caller.scopes] : [],
      authenticatedWith: caller.kind === "apiKey" ? "API_KEY" : "SESSION",
    };
  }
}
