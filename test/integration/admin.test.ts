// Admin basics through the API: promote and demote a user (their key follows at once), change a
// plan's rate and quotas, each change in the admin log with who did it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdminLogDocument,
  EarningsDocument,
  SetUserRoleDocument,
  UpdatePlanDocument,
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

describe("admin basics", () => {
  it("promotes and demotes a user, whose key follows at once, and logs it", async () => {
    const user = await stack.signup("Becomes Publisher");
    expect(code(await stack.graphql(EarningsDocument, {}, user.headers))).toBe("FORBIDDEN");
    const promoted = ok(
      await stack.graphql(SetUserRoleDocument, { userId: user.userId, role: "PUBLISHER" }, admin.headers),
    );
    expect(promoted.setUserRole.role).toBe("PUBLISHER");
    expect(ok(await stack.graphql(EarningsDocument, {}, user.headers)).earnings.balance).toBe(0);
    ok(await stack.graphql(SetUserRoleDocument, { userId: user.userId, role: "BUYER" }, admin.headers));
    expect(code(await stack.graphql(EarningsDocument, {}, user.headers))).toBe("FORBIDDEN");
    expect(
      code(await stack.graphql(SetUserRoleDocument, { userId: user.userId, role: "ADMIN" }, user.headers)),
    ).toBe("FORBIDDEN");
    expect(
      code(await stack.graphql(SetUserRoleDocument, { userId: admin.userId, role: "BUYER" }, admin.headers)),
    ).toBe("CONFLICT");
    const log = ok(await stack.graphql(AdminLogDocument, { action: "user.role" }, admin.headers)).adminLog
      .edges;
    expect(log.map((e) => [e.node.targetId, e.node.details])).toEqual([
      [user.userId, { from: "BUYER", to: "PUBLISHER" }],
      [user.userId, { from: "PUBLISHER", to: "BUYER" }],
    ]);
    expect(log.every((e) => e.node.actorId === admin.userId)).toBe(true);
  });

  it("edits a plan's rate and quotas (100 requests an hour), audited", async () => {
    const res = ok(
      await stack.graphql(
        UpdatePlanDocument,
        { code: "BASIC", changes: { requestsPerMinute: 30, hourlyQuota: 100, monthlyQuota: null } },
        admin.headers,
      ),
    );
    expect(res.updatePlan).toEqual({
      code: "BASIC",
      requestsPerMinute: 30,
      hourlyQuota: 100,
      monthlyQuota: null,
    });
    expect(
      code(
        await stack.graphql(
          UpdatePlanDocument,
          { code: "BASIC", changes: { hourlyQuota: 0 } },
          admin.headers,
        ),
      ),
    ).toBe("BAD_USER_INPUT");
    const log = ok(await stack.graphql(AdminLogDocument, { action: "plan.update" }, admin.headers)).adminLog
      .edges;
    expect(log.map((e) => e.node.details)).toEqual([
      { code: "BASIC", requestsPerMinute: 30, hourlyQuota: 100, monthlyQuota: null },
    ]);
  });
});
