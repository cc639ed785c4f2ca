// A revoked key or a suspended account loses its live connections at once, on every API process,
// not at the next periodic re-check: the revocation is an event that crosses Redis.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreateApiKeyDocument, RevokeApiKeyDocument, SuspendAccountDocument } from "../generated/graphql.js";
import { liveClient, type LiveClient } from "../support/live.js";
import { startStack, type TestStack } from "../support/stack.js";

// Far beyond the test's time: only the revocation event can close the connections in time.
const env = { SUBSCRIPTION_RECHECK_SECONDS: "3600" };
let apiA: TestStack;
let apiB: TestStack;
const clients: LiveClient[] = [];

beforeAll(async () => {
  apiA = await startStack(env);
  apiB = await startStack(env, { sharing: apiA });
}, 60_000);

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.dispose()));
  await apiB?.close();
  await apiA?.close();
});

const connect = (stack: TestStack, key: string) => {
  const client = liveClient(stack, { "x-api-key": key });
  clients.push(client);
  return client;
};

describe("revocations reach every API process", () => {
  it("closes a connection on process B within seconds of its key being revoked on process A", async () => {
    const buyer = await apiA.signup("Revoked Buyer");
    const created = await apiA.graphql(CreateApiKeyDocument, { input: { name: "live" } }, buyer.headers);
    const { secret, apiKey } = created.data!.createApiKey;
    const revoked = connect(apiB, secret);
    const kept = connect(apiB, buyer.secret);
    await Promise.all([revoked.connected, kept.connected]);

    const at = Date.now();
    expect(
      (await apiA.graphql(RevokeApiKeyDocument, { id: apiKey.id }, buyer.headers)).errors,
    ).toBeUndefined();
    expect(await revoked.closed).toEqual({ code: 4401, reason: "API key revoked" });
    expect(Date.now() - at).toBeLessThan(3000);
    // The account's other key is still good: its connection stays open.
    const stillOpen = await Promise.race([
      kept.closed.then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), 500)),
    ]);
    expect(stillOpen).toBe(true);
  });

  it("closes every connection of an account suspended on another process", async () => {
    const admin = await apiA.admin();
    const doomed = await apiA.signup("Suspended Buyer");
    const onA = connect(apiA, doomed.secret);
    const onB = connect(apiB, doomed.secret);
    await Promise.all([onA.connected, onB.connected]);

    const at = Date.now();
    await apiA.graphql(SuspendAccountDocument, { accountId: doomed.accountId }, admin.headers);
    const expected = { code: 4403, reason: "Account suspended" };
    expect(await onA.closed).toEqual(expected);
    expect(await onB.closed).toEqual(expected);
    expect(Date.now() - at).toBeLessThan(3000);
  });
});
