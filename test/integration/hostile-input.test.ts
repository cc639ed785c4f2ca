// Hostile input at the edge, on the real stack: NUL bytes and lone surrogates in any string
// argument, inputs nested past the recursion limit, and JWTs that decode to a valid signature
// without being its canonical encoding are all refused as client errors before reaching a store.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoginDocument } from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

interface Answer {
  status: number;
  body: { errors?: { extensions?: Record<string, unknown> }[]; error?: Record<string, unknown> };
}

async function post(path: string, body: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as Answer["body"] };
}

const gql = (query: string, variables?: unknown, headers?: Record<string, string>) =>
  post("/graphql", JSON.stringify({ query, variables }), headers);

const gqlCode = (answer: Answer) => answer.body.errors?.[0]?.extensions?.code;

const HOSTILE = { nul: "a\u0000b", highSurrogate: "a\ud800b", lowSurrogate: "\udc00z" };

describe("strings with a NUL byte or a lone surrogate", () => {
  it.each(Object.entries(HOSTILE))("are refused in GraphQL variables (%s)", async (_kind, value) => {
    const answer = await gql("query($s: String!) { dataset(slug: $s) { id } }", { s: value });
    expect(answer.status).toBe(400);
    expect(gqlCode(answer)).toBe("BAD_USER_INPUT");
  });

  it("are refused in GraphQL literals, for anonymous callers too", async () => {
    const inline = await gql('{ dataset(slug: "x\\u0000") { id } }');
    expect(inline.status).toBe(400);
    expect(gqlCode(inline)).toBe("BAD_USER_INPUT");
    // graphql-js itself refuses a lone surrogate escape in a literal as a syntax error.
    const surrogate = await gql('{ dataset(slug: "x\\ud800") { id } }');
    expect(surrogate.status).toBe(400);
    expect(gqlCode(surrogate)).toBe("GRAPHQL_PARSE_FAILED");
    const login = await stack.graphql(LoginDocument, { email: "a\u0000@example.com", password: "x" });
    expect(login.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("are refused by REST routes and the token endpoint", async () => {
    const buyer = await stack.signup("Hostile");
    const query = await fetch(`${stack.url}/api/v1/data/query?dataset=x%00y`, { headers: buyer.headers });
    expect(query.status).toBe(400);
    expect(await query.json()).toMatchObject({ error: { code: "BAD_USER_INPUT" } });

    const token = await fetch(`${stack.url}/auth/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "grant_type=password&username=a%00b&password=whatever",
    });
    expect(token.status).toBe(400);
    expect(await token.json()).toMatchObject({ error: { code: "BAD_USER_INPUT" } });

    const json = await post(
      "/api/v1/ingest/some-dataset",
      JSON.stringify([{ name: "\ud83d" }]),
      buyer.headers,
    );
    expect(json.status).toBe(400);
    expect(json.body.error?.code).toBe("BAD_USER_INPUT");
  });

  it("leave well-formed text alone: astral characters pass", async () => {
    const answer = await gql("query($s: String!) { dataset(slug: $s) { id } }", { s: "🦆 ok" });
    expect(answer.status).toBe(200);
    expect(answer.body.errors).toBeUndefined();
  });
});

describe("recursive inputs", () => {
  // Built as text: JSON.stringify itself overflows the stack on the deepest ones.
  const nested = (levels: number) => `${'{"not":'.repeat(levels)}{"column":"id","eq":1}${"}".repeat(levels)}`;
  const recordsQuery =
    "query($f: RecordFilterInput) { datasets(first: 1) { edges { node { records(first: 1, filter: $f) { edges { cursor } } } } } }";

  it.each([100, 1500, 20_000])("nested %i levels deep are refused before execution", async (levels) => {
    const answer = await post(
      "/graphql",
      `{"query":${JSON.stringify(recordsQuery)},"variables":{"f":${nested(levels)}}}`,
    );
    expect(answer.status).toBe(400);
    expect(gqlCode(answer)).toBe("BAD_USER_INPUT");
  });

  it("nested deep in a literal are refused too", async () => {
    const literal = `${"{ not: ".repeat(300)}{ column: "id", eq: 1 }${" }".repeat(300)}`;
    const answer = await gql(
      `{ datasets(first: 1) { edges { node { records(first: 1, filter: ${literal}) { edges { cursor } } } } } }`,
    );
    expect(answer.status).toBe(400);
    expect(["BAD_USER_INPUT", "GRAPHQL_PARSE_FAILED"]).toContain(gqlCode(answer));
  });

  it("nested deep in a REST filter are refused", async () => {
    const buyer = await stack.signup("Deep");
    const filter = encodeURIComponent(nested(300));
    const response = await fetch(`${stack.url}/api/v1/data/query?dataset=x&filter=${filter}`, {
      headers: buyer.headers,
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "BAD_USER_INPUT" } });
  });
});

describe("bearer tokens", () => {
  it("are refused unless the signature is the canonical base64url of the HMAC", async () => {
    const buyer = await stack.signup("Jwt", "BUYER", "a long enough password 1");
    const login = await stack.graphql(LoginDocument, {
      email: buyer.email,
      password: "a long enough password 1",
    });
    const token = login.data!.login.token;
    const me = (t: string) => gql("{ me { scopes } }", undefined, { authorization: `Bearer ${t}` });
    expect((await me(token)).status).toBe(200);

    const last = token.at(-1)!;
    // A 32-byte HMAC in 43 characters leaves the last character's two low bits unused.
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const flipped = alphabet[alphabet.indexOf(last) ^ 1]!;
    const [header, payload] = token.split(".");
    for (const forged of [
      `${token}=`,
      `${token}!!`,
      `${token.slice(0, -1)}${flipped}`,
      `${header}.${payload}=.${token.split(".")[2]}`,
      `${token.slice(0, -1)}`,
    ]) {
      const answer = await me(forged);
      expect(answer.status, forged.slice(-6)).toBe(401);
      expect(gqlCode(answer)).toBe("UNAUTHENTICATED");
    }
  });
});
