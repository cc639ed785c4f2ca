// Admin basics: inviting a person to an account. The admin gets a one-time token; the person
// accepts it with a name and a password, becomes a user of that account with the invited role and
// is logged in; the token works once; only admins invite, and each invitation is in the admin log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AcceptInvitationDocument,
  AdminLogDocument,
  InviteUserDocument,
  LoginDocument,
  MeDocument,
} from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let admin: TestAccount;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.admin();
});

afterAll(async () => {
  await stack?.close();
});

describe("invitations", () => {
  it("make the invited person a user of the account with the role, once, audited", async () => {
    const team = await stack.signup("Harbour Analytics", "PUBLISHER");
    const invited = ok(
      await stack.graphql(
        InviteUserDocument,
        { accountId: team.accountId, email: " Ana@Example.com ", role: "PUBLISHER" },
        admin.headers,
      ),
    ).inviteUser;
    expect(invited).toMatchObject({ email: "ana@example.com", role: "PUBLISHER" });
    expect(invited.token).toMatch(/^dhi_[A-Za-z0-9_-]{43}$/);

    const password = "a long enough passphrase";
    const accepted = ok(
      await stack.graphql(AcceptInvitationDocument, { token: invited.token, name: "Ana", password }),
    ).acceptInvitation;
    expect(accepted.user).toEqual({ email: "ana@example.com", role: "PUBLISHER" });
    const session = { authorization: `Bearer ${accepted.token}` };
    const me = ok(await stack.graphql(MeDocument, {}, session)).me;
    expect(me.account!.id).toBe(team.accountId);
    expect(
      ok(await stack.graphql(LoginDocument, { email: "ana@example.com", password })).login.user.email,
    ).toBe("ana@example.com");

    // Once only.
    const again = await stack.graphql(AcceptInvitationDocument, {
      token: invited.token,
      name: "Eve",
      password,
    });
    expect(code(again)).toBe("NOT_FOUND");
    const log = ok(await stack.graphql(AdminLogDocument, { action: "user.invite" }, admin.headers));
    expect(log.adminLog.edges.map((e) => e.node.details)).toEqual([
      { email: "ana@example.com", role: "PUBLISHER" },
    ]);
  });

  it("are for admins, to unused emails, with tokens that cannot be guessed", async () => {
    const owner = await stack.signup("Small Shop");
    const vars = { accountId: owner.accountId, email: "new@example.com", role: "BUYER" as const };
    expect(code(await stack.graphql(InviteUserDocument, vars, owner.headers))).toBe("FORBIDDEN");
    expect(
      code(await stack.graphql(InviteUserDocument, { ...vars, email: owner.email }, admin.headers)),
    ).toBe("CONFLICT");
    expect(
      code(await stack.graphql(InviteUserDocument, { ...vars, email: "not an email" }, admin.headers)),
    ).toBe("BAD_USER_INPUT");
    const forged = { token: `dhi_${"A".repeat(43)}`, name: "Mallory", password: "a long enough passphrase" };
    expect(code(await stack.graphql(AcceptInvitationDocument, forged))).toBe("NOT_FOUND");
  });
});
