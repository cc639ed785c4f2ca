import { Arg, Authorized, Ctx, Field, ID, Mutation, ObjectType, Resolver } from "type-graphql";
import { UserRole } from "../generated/prisma/client.js";
import type { Context } from "../graphql/context.js";
import { decodeGlobalId, encodeGlobalId } from "../graphql/relay.js";
import { LoginPayload, User } from "../identity/auth.types.js";

@ObjectType({ description: "An invitation to join an account; its token is shown here once." })
export class InvitationPayload {
  @Field(() => ID)
  id!: string;

  @Field(() => String)
  email!: string;

  @Field(() => UserRole)
  role!: UserRole;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => String, { description: "Send it to the person; acceptInvitation takes it. Shown once." })
  token!: string;
}

@Resolver()
export class InvitationResolver {
  @Authorized("ADMIN", "admin")
  @Mutation(() => InvitationPayload, {
    description: "Admin: invite a person to an account as a user (audited).",
  })
  async inviteUser(
    @Arg("accountId", () => ID) accountId: string,
    @Arg("email", () => String) email: string,
    @Arg("role", () => UserRole) role: UserRole,
    @Ctx() ctx: Context,
  ) {
    const id = decodeGlobalId(accountId, ["Account"]).id;
    const { invitation, token } = await ctx.services.invitations.invite(ctx.caller, id, email, role);
    return Object.assign(new InvitationPayload(), {
      id: encodeGlobalId("Invitation", invitation.id),
      email: invitation.email,
      role: invitation.role,
      expiresAt: invitation.expiresAt,
      token,
    });
  }

  @Mutation(() => LoginPayload, {
    description: "Joins the inviting account with a name and password (once, within 7 days), logged in.",
  })
  async acceptInvitation(
    @Arg("token", () => String) token: string,
    @Arg("name", () => String) name: string,
    @Arg("password", () => String) password: string,
    @Ctx() ctx: Context,
  ) {
    const user = await ctx.services.invitations.accept(token, name, password);
    const session = await ctx.services.auth.login(user.email, password);
    return { token: session.token, expiresAt: session.expiresAt, user: User.from(session.user) };
  }
}
