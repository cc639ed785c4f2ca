// Keys and sessions over HTTP on the real stack: they work until revoked, expired, rotated out or
// their account suspended, and then fail at once; secrets are never shown twice or logged.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sign } from "../../src/identity/request-signing.js";
import { hashApiKey } from "../../src/identity/secrets.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  ApiKeysDocument,
  CreateApiKeyDocument,
  CreateSignedApiKeyDocument,
  CreditTransactionsDocument,
  LoginDocument,
  MeDocument,
  NodesAsSeenDocument,
  ReinstateAccountDocument,
  RevokeApiKeyDocument,
  RotateApiKeyDocument,
  SuspendAccountDocument,
} from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

let stack: TestStack;
/** Every secret and password handed out in this file, to prove none is ever logged. */
const secrets: string[] = [];
const PASSWORD = "a long enough password 1";

beforeAll(async () => {
  stack = await startStack();
  secrets.push(PASSWORD);
});

afterAll(async () => {
  await stack?.close();
});

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function buyer(name = "Buyer") {
  const account = await stack.signup(name, "BUYER", PASSWORD);
  secrets.push(account.secret);
  return account;
}

describe("signup", () => {
  it("creates a buyer with a key shown once, the plan's starting credits and a ledger entry", async () => {
    const b = await buyer("Signup Co");
    const me = await stack.graphql(MeDocument, {}, b.headers);
    expect(me.data?.me).toMatchObject({
      authenticatedWith: "API_KEY",
      user: { role: "BUYER", email: b.email },
      account: { name: "Signup Co", status: "ACTIVE", creditBalance: 100 },
    });
    const ledger = await stack.graphql(CreditTransactionsDocument, { first: 10 }, b.headers);
    expect(ledger.data?.creditTransactions.edges.map((e) => e.node)).toEqual([
      { kind: "TOP_UP", amount: 100, balanceAfter: 100 },
    ]);

    const keys = await stack.graphql(ApiKeysDocument, { first: 10 }, b.headers);
    const listed = keys.data!.apiKeys.edges.map((e) => e.node);
    expect(listed).toHaveLength(1);
    expect(b.secret.startsWith(`${listed[0]!.prefix}_`)).toBe(true);
    expect(JSON.stringify(keys)).not.toContain(b.secret);

    // Only the SHA-256 of the key is stored, nowhere the key itself.
    const row = await stack.app.stores.prisma.apiKey.findFirstOrThrow({
      where: { accountId: b.rawAccountId },
    });
    expect(row.secretHash).toBe(hashApiKey(b.secret));
    expect(JSON.stringify(row, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toContain(
      b.secret.split("_").at(-1),
    );
  });

  it("refuses a second account with the same email", async () => {
    const b = await buyer();
    const again = await fetch(`${stack.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: 'mutation($e: String!) { signup(input: { name: "X", email: $e }) { apiKeySecret } }',
        variables: { e: b.email.toUpperCase() },
      }),
    });
    const body = (await again.json()) as { errors: { extensions: { code: string } }[] };
    expect(body.errors[0]?.extensions.code).toBe("CONFLICT");
  });
});

describe("API keys", () => {
  it("work until revoked, then fail with UNAUTHENTICATED at once", async () => {
    const b = await buyer();
    const created = await stack.graphql(CreateApiKeyDocument, { input: { name: "ci" } }, b.headers);
    const { secret, apiKey } = created.data!.createApiKey;
    secrets.push(secret);
    const headers = { "x-api-key": secret };
    expect((await stack.graphql(MeDocument, {}, headers)).status).toBe(200);

    await stack.graphql(RevokeApiKeyDocument, { id: apiKey.id }, b.headers);
    const after = await stack.graphql(MeDocument, {}, headers);
    expect(after.status).toBe(401);
    expect(code(after)).toBe("UNAUTHENTICATED");
    expect(after.errors?.[0]?.message).toBe("API key revoked");
    // The other key of the account is unaffected.
    expect((await stack.graphql(MeDocument, {}, b.headers)).status).toBe(200);
  });

  it("work until they expire", async () => {
    const b = await buyer();
    // The key is remembered once used (identity-cache.ts), but never past its expiry.
    const expiresAt = new Date(Date.now() + 1500);
    const created = await stack.graphql(
      CreateApiKeyDocument,
      { input: { name: "short", expiresAt: expiresAt.toISOString() } },
      b.headers,
    );
    const { secret } = created.data!.createApiKey;
    secrets.push(secret);
    expect((await stack.graphql(MeDocument, {}, { "x-api-key": secret })).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, expiresAt.getTime() - Date.now() + 50));
    const after = await stack.graphql(MeDocument, {}, { "x-api-key": secret });
    expect(after.status).toBe(401);
    expect(after.errors?.[0]?.message).toBe("API key expired");
  });

  it("keep the old secret working through the rotation grace period only", async () => {
    const b = await buyer();
    const [listed] = (await stack.graphql(ApiKeysDocument, { first: 1 }, b.headers)).data!.apiKeys.edges;
    const rotated = await stack.graphql(
      RotateApiKeyDocument,
      { id: listed!.node.id, graceSeconds: 2 },
      b.headers,
    );
    const fresh = rotated.data!.rotateApiKey.secret;
    secrets.push(fresh);
    expect((await stack.graphql(MeDocument, {}, b.headers)).status).toBe(200);
    expect((await stack.graphql(MeDocument, {}, { "x-api-key": fresh })).status).toBe(200);
    const again = await stack.graphql(RotateApiKeyDocument, { id: listed!.node.id }, b.headers);
    expect(code(again)).toBe("CONFLICT");

    await wait(2100);
    const old = await stack.graphql(MeDocument, {}, b.headers);
    expect(old.status).toBe(401);
    expect(old.errors?.[0]?.message).toMatch(/rotated/);
    expect((await stack.graphql(MeDocument, {}, { "x-api-key": fresh })).status).toBe(200);
  });

  it("never carry more scopes than asked for, nor more than the role allows", async () => {
    const b = await buyer();
    const narrow = await stack.graphql(
      CreateApiKeyDocument,
      { input: { name: "catalog only", scopes: ["catalog:read"] } },
      b.headers,
    );
    secrets.push(narrow.data!.createApiKey.secret);
    const denied = await stack.graphql(
      ApiKeysDocument,
      { first: 5 },
      { "x-api-key": narrow.data!.createApiKey.secret },
    );
    expect(denied.errors?.[0]?.extensions).toMatchObject({
      code: "FORBIDDEN",
      requiredScopes: ["account:read"],
    });

    // Scopes hold on every path, not only on root connections: by id the key sees nothing either.
    const narrowKey = { "x-api-key": narrow.data!.createApiKey.secret };
    const full = await stack.graphql(MeDocument, {}, b.headers);
    const ownIds = [full.data!.me.account.id, full.data!.me.user.id, narrow.data!.createApiKey.apiKey.id];
    expect((await stack.graphql(NodesAsSeenDocument, { ids: ownIds }, b.headers)).data?.nodes).toHaveLength(
      3,
    );
    expect((await stack.graphql(NodesAsSeenDocument, { ids: ownIds }, b.headers)).data?.nodes).not.toContain(
      null,
    );
    expect((await stack.graphql(NodesAsSeenDocument, { ids: ownIds }, narrowKey)).data?.nodes).toEqual([
      null,
      null,
      null,
    ]);
    expect(code(await stack.graphql(MeDocument, {}, narrowKey))).toBe("FORBIDDEN");

    const escalate = await stack.graphql(
      CreateApiKeyDocument,
      { input: { name: "x", scopes: ["admin"] } },
      b.headers,
    );
    expect(code(escalate)).toBe("FORBIDDEN");
    const unknown = await stack.graphql(
      CreateApiKeyDocument,
      { input: { name: "x", scopes: ["root"] } },
      b.headers,
    );
    expect(code(unknown)).toBe("BAD_USER_INPUT");
  });

  it("reject garbage and unknown keys without telling them apart", async () => {
    for (const key of ["nope", `dh_abcdefghij_${"A".repeat(43)}`]) {
      const res = await stack.graphql(MeDocument, {}, { "x-api-key": key });
      expect(res.status).toBe(401);
      expect(res.errors?.[0]?.message).toBe("Invalid API key");
    }
  });
});

describe("suspension", () => {
  it("stops an account's keys and sessions at once, and reinstatement restores them", async () => {
    const admin = await stack.admin();
    const b = await buyer();
    const session = await stack.graphql(LoginDocument, { email: b.email, password: PASSWORD });
    const bearer = { authorization: `Bearer ${session.data!.login.token}` };
    secrets.push(session.data!.login.token);

    const suspended = await stack.graphql(SuspendAccountDocument, { accountId: b.accountId }, admin.headers);
    expect(suspended.data?.suspendAccount.status).toBe("SUSPENDED");
    for (const headers of [b.headers, bearer]) {
      const res = await stack.graphql(MeDocument, {}, headers);
      expect(res.status).toBe(403);
      expect(code(res)).toBe("FORBIDDEN");
    }
    expect(code(await stack.graphql(LoginDocument, { email: b.email, password: PASSWORD }))).toBe(
      "FORBIDDEN",
    );

    await stack.graphql(ReinstateAccountDocument, { accountId: b.accountId }, admin.headers);
    expect((await stack.graphql(MeDocument, {}, b.headers)).status).toBe(200);
    expect((await stack.graphql(MeDocument, {}, bearer)).status).toBe(200);
  });

  it("is for admins only", async () => {
    const b = await buyer();
    const other = await buyer();
    const res = await stack.graphql(SuspendAccountDocument, { accountId: other.accountId }, b.headers);
    expect(code(res)).toBe("FORBIDDEN");
    const row = await stack.app.stores.prisma.account.findUniqueOrThrow({
      where: { id: other.rawAccountId },
    });
    expect(row.status).toBe("ACTIVE");
  });
});

describe("dashboard sessions", () => {
  it("log in with a password and act through a bearer token", async () => {
    const b = await buyer();
    const session = await stack.graphql(LoginDocument, { email: b.email, password: PASSWORD });
    const token = session.data!.login.token;
    secrets.push(token);
    const me = await stack.graphql(MeDocument, {}, { authorization: `Bearer ${token}` });
    expect(me.data?.me).toMatchObject({ authenticatedWith: "SESSION", user: { email: b.email } });

    const tampered = `${token.slice(0, -4)}AAAA`;
    const bad = await stack.graphql(MeDocument, {}, { authorization: `Bearer ${tampered}` });
    expect(bad.status).toBe(401);
  });

  it("refuse a wrong password and an unknown email alike", async () => {
    const b = await buyer();
    const wrong = await stack.graphql(LoginDocument, { email: b.email, password: "not the password" });
    const unknown = await stack.graphql(LoginDocument, { email: "nobody@example.com", password: PASSWORD });
    expect(code(wrong)).toBe("UNAUTHENTICATED");
    expect(unknown.errors?.[0]?.message).toBe(wrong.errors?.[0]?.message);
  });

  it("issue the same token through the OAuth2 password grant", async () => {
    const b = await buyer();
    const form = (fields: Record<string, string>) =>
      fetch(`${stack.url}/auth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams(fields).toString(),
      });
    const ok = await form({ grant_type: "password", username: b.email, password: PASSWORD });
    expect(ok.status).toBe(200);
    const body = (await ok.json()) as { access_token: string; token_type: string; expires_in: number };
    secrets.push(body.access_token);
    expect(body.token_type).toBe("Bearer");
    expect(body.expires_in).toBeGreaterThan(800);
    const me = await stack.graphql(MeDocument, {}, { authorization: `Bearer ${body.access_token}` });
    expect(me.data?.me.user.email).toBe(b.email);

    const bad = await form({ grant_type: "password", username: b.email, password: "wrong password!!" });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: "invalid_grant" });
    const grant = await form({ grant_type: "client_credentials" });
    expect(await grant.json()).toEqual({ error: "unsupported_grant_type" });
  });
});

describe("signed requests", () => {
  it("are required by a key that asks for them, verified over the exact body, and never replayed", async () => {
    const b = await buyer();
    const created = await stack.graphql(CreateSignedApiKeyDocument, { name: "signed" }, b.headers);
    const { secret, signingSecret, apiKey } = created.data!.createApiKey;
    secrets.push(secret, signingSecret!);
    expect(apiKey.requireSignature).toBe(true);
    expect(signingSecret).toMatch(/^dhs_/);

    const body = JSON.stringify({ query: "{ me { user { email } } }" });
    const send = (headers: Record<string, string>, payload = body) =>
      fetch(`${stack.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": secret, ...headers },
        body: payload,
      });
    const signed = (timestamp: number, payload = body) => ({
      "x-datahus-timestamp": String(timestamp),
      "x-datahus-signature": sign(signingSecret!, String(timestamp), "POST", "/graphql", payload),
    });
    const now = Math.floor(Date.now() / 1000);

    const unsigned = await send({});
    expect(unsigned.status).toBe(401);
    expect(await unsigned.json()).toMatchObject({
      errors: [
        {
          extensions: {
            code: "UNAUTHENTICATED",
            requiredHeaders: ["x-datahus-timestamp", "x-datahus-signature"],
          },
        },
      ],
    });

    const headers = signed(now);
    const ok = await send(headers);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ data: { me: { user: { email: b.email } } } });

    const replay = await send(headers);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/replay/);

    const altered = await send(signed(now + 1), body.replace("email", "id"));
    expect(altered.status).toBe(401);
    const stale = await send(signed(now - 3600));
    expect(((await stale.json()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/window/);

    // Stored encrypted: the database never holds the signing secret in clear.
    const row = await stack.app.stores.prisma.apiKey.findUniqueOrThrow({
      where: { id: decodeGlobalId(apiKey.id).id },
    });
    expect(row.signingSecretEncrypted).toMatch(/^v1\./);
    expect(row.signingSecretEncrypted).not.toContain(signingSecret!.slice(4));
  });
});

describe("secrets", () => {
  it("never appear in any log line", () => {
    expect(secrets.length).toBeGreaterThan(10);
    const logs = stack.logText();
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of secrets) expect(logs).not.toContain(secret);
  });
});
