// Callers are remembered by each API process (identity/identity-cache.ts), and a change of access
// made on one process reaches every other at once: the cache time is set far beyond the test, so
// only the access.revoked event (over Redis) can make process B refuse what it remembers.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateApiKeyDocument,
  MeDocument,
  RevokeApiKeyDocument,
  RotateApiKeyDocument,
  SetAccountPlanDocument,
  SetUserRoleDocument,
  SuspendAccountDocument,
} from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

const env = { IDENTITY_CACHE_SECONDS: "3600", SUBSCRIPTION_RECHECK_SECONDS: "3600" };
let apiA: TestStack;
let apiB: TestStack;

beforeAll(async () => {
  apiA = await startStack(env);
  apiB = await startStack(env, { sharing: apiA });
}, 60_000);

afterAll(async () => {
  await apiB?.close();
  await apiA?.close();
});

const me = (stack: TestStack, headers: Record<string, string>) => stack.graphql(MeDocument, {}, headers);

/** The first answer of B that is not `status`, polling for at most a second. */
async function changedWithinASecond(headers: Record<string, string>, status: number) {
  const deadline = Date.now() + 1000;
  for (;;) {
    const response = await me(apiB, headers);
    if (response.status !== status || Date.now() > deadline) return response;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe("remembered callers", () => {
  it("stop working on process B within a second of their key being revoked on process A", async () => {
    const buyer = await apiA.signup("Cached Buyer");
    const created = await apiA.graphql(CreateApiKeyDocument, { input: { name: "cached" } }, buyer.headers);
    const { secret, apiKey } = created.data!.createApiKey;
    const key = { "x-api-key": secret };
    expect((await me(apiB, key)).status).toBe(200); // B now remembers the key
    await apiA.graphql(RevokeApiKeyDocument, { id: apiKey.id }, buyer.headers);
    const after = await changedWithinASecond(key, 200);
    expect(after.status).toBe(401);
    expect(after.errors?.[0]?.message).toBe("API key revoked");
    // The account's other key was forgotten too, and is read again: still good.
    expect((await me(apiB, buyer.headers)).status).toBe(200);
  });

  it("stop working on every process within a second of their account being suspended", async () => {
    const admin = await apiA.admin();
    const doomed = await apiA.signup("Cached Suspended");
    expect((await me(apiA, doomed.headers)).status).toBe(200);
    expect((await me(apiB, doomed.headers)).status).toBe(200);
    await apiA.graphql(SuspendAccountDocument, { accountId: doomed.accountId }, admin.headers);
    const after = await changedWithinASecond(doomed.headers, 200);
    expect(after.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect((await me(apiA, doomed.headers)).errors?.[0]?.message).toBe("Account suspended");
  });

  it("end a rotated key at its grace on every process, and take a new plan's limits at once", async () => {
    const admin = await apiA.admin();
    const buyer = await apiA.signup("Cached Rotated");
    expect((await me(apiB, buyer.headers)).headers.get("x-ratelimit-limit")).not.toBe("777");

    await apiA.graphql(
      SetAccountPlanDocument,
      { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 777 },
      admin.headers,
    );
    const deadline = Date.now() + 1000;
    let limit: string | null = null;
    while (limit !== "777" && Date.now() < deadline)
      limit = (await me(apiB, buyer.headers)).headers.get("x-ratelimit-limit");
    expect(limit).toBe("777");

    const created = await apiA.graphql(CreateApiKeyDocument, { input: { name: "to rotate" } }, buyer.headers);
    const { secret, apiKey } = created.data!.createApiKey;
    const old = { "x-api-key": secret };
    expect((await me(apiB, old)).status).toBe(200);
    await apiA.graphql(RotateApiKeyDocument, { id: apiKey.id, graceSeconds: 0 }, buyer.headers);
    const after = await changedWithinASecond(old, 200);
    expect(after.status).toBe(401);
    expect(after.errors?.[0]?.message).toBe("API key rotated; use its replacement");
  });

  it("take a changed role on every process within a second", async () => {
    const admin = await apiA.admin();
    const user = await apiA.signup("Cached Promoted");
    const earnings = "{ earnings { balance } }";
    const ask = async () => {
      const response = await fetch(`${apiB.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", ...user.headers },
        body: JSON.stringify({ query: earnings }),
      });
      return (await response.json()) as { errors?: { extensions?: { code?: string } }[] };
    };
    expect((await ask()).errors?.[0]?.extensions?.code).toBe("FORBIDDEN"); // B remembers a BUYER
    await apiA.graphql(SetUserRoleDocument, { userId: user.userId, role: "PUBLISHER" }, admin.headers);
    const deadline = Date.now() + 1000;
    let answer = await ask();
    while (answer.errors && Date.now() < deadline) answer = await ask();
    expect(answer.errors).toBeUndefined();
  });

  it("write lastUsedAt in batches, off the request path", async () => {
    const buyer = await apiA.signup("Cached Used");
    await Promise.all(Array.from({ length: 20 }, () => me(apiB, buyer.headers)));
    await apiB.app.services.auth.flushLastUsed();
    const keys = await apiA.app.stores.prisma.apiKey.findMany({ where: { accountId: buyer.rawAccountId } });
    expect(keys).toHaveLength(1);
    expect(keys[0]!.lastUsedAt).not.toBeNull();
  });
});
