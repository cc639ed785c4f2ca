// Plan rate limits, per-IP limits for anonymous callers, query limits and HTTPS, over HTTP.
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LoginDocument, MeDocument, SetAccountPlanDocument } from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

async function post(url: string, query: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query }),
  });
  return {
    res,
    body: (await res.json()) as {
      data?: unknown;
      errors?: { message: string; extensions?: Record<string, unknown> }[];
    },
  };
}

describe("plan rate limits", () => {
  it("let exactly the limit through 50 concurrent requests, counting down in the headers", async () => {
    const admin = await stack.admin();
    const buyer = await stack.signup("Busy Buyer");
    const plan = await stack.graphql(
      SetAccountPlanDocument,
      { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 10 },
      admin.headers,
    );
    expect(plan.data?.setAccountPlan.rateLimitPerMinute).toBe(10);

    const responses = await Promise.all(
      Array.from({ length: 50 }, () => stack.graphql(MeDocument, {}, buyer.headers)),
    );
    const ok = responses.filter((r) => r.status === 200);
    const limited = responses.filter((r) => r.status === 429);
    expect(ok).toHaveLength(10);
    expect(limited).toHaveLength(40);
    expect(ok.map((r) => Number(r.headers.get("x-ratelimit-remaining"))).sort((a, b) => a - b)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
    for (const r of responses) expect(r.headers.get("x-ratelimit-limit")).toBe("10");
    for (const r of limited) {
      const retryAfter = Number(r.headers.get("retry-after"));
      expect(retryAfter).toBeGreaterThanOrEqual(1);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(r.errors?.[0]?.extensions).toMatchObject({
        code: "RATE_LIMITED",
        retryAfterSeconds: retryAfter,
      });
      expect(r.headers.get("x-ratelimit-remaining")).toBe("0");
    }
    const reset = Number(ok[0]!.headers.get("x-ratelimit-reset"));
    expect(reset).toBeGreaterThan(Date.now() / 1000);
    expect(reset).toBeLessThanOrEqual(Date.now() / 1000 + 61);
  });

  it("announce the plan's limit on every response", async () => {
    const buyer = await stack.signup("Free Buyer");
    const res = await stack.graphql(MeDocument, {}, buyer.headers);
    expect(res.headers.get("x-ratelimit-limit")).toBe("100");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("99");
  });
});

describe("anonymous callers", () => {
  it("are limited per client IP, failed logins and bad keys included", async () => {
    const own = await startStack({ ANONYMOUS_RATE_LIMIT_PER_MINUTE: "5" });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        statuses.push(
          (await own.graphql(LoginDocument, { email: "x@example.com", password: "guess" + i })).status,
        );
      }
      for (let i = 0; i < 2; i++) {
        statuses.push((await own.graphql(MeDocument, {}, { "x-api-key": "guessed-key" })).status);
      }
      const blocked = await own.graphql(LoginDocument, { email: "x@example.com", password: "guess9" });
      // A failed login is UNAUTHENTICATED, so 401 like a bad key (one status per code).
      expect(statuses).toEqual([401, 401, 401, 401, 401]);
      expect(blocked.status).toBe(429);
      expect(blocked.errors?.[0]?.extensions?.code).toBe("RATE_LIMITED");
    } finally {
      await own.close();
    }
  });
});

describe("behind a trusted proxy", () => {
  it("counts anonymous callers by the forwarded client IP, and ignores the header otherwise", async () => {
    const trusting = await startStack({ ANONYMOUS_RATE_LIMIT_PER_MINUTE: "2", TRUST_PROXY: "true" });
    const direct = await startStack({ ANONYMOUS_RATE_LIMIT_PER_MINUTE: "2" });
    try {
      const statuses = async (url: string, ips: string[]) => {
        const out: number[] = [];
        for (const ip of ips) {
          const { res } = await post(url, "{ __typename }", { "x-forwarded-for": ip });
          out.push(res.status);
        }
        return out;
      };
      // Behind a proxy: each client has its own budget of 2.
      expect(
        await statuses(trusting.url, ["203.0.113.1", "203.0.113.1", "203.0.113.2", "203.0.113.1"]),
      ).toEqual([200, 200, 200, 429]);
      // Not behind one: a forged header must not buy a fresh budget.
      expect(await statuses(direct.url, ["203.0.113.1", "203.0.113.2", "203.0.113.3"])).toEqual([
        200, 200, 429,
      ]);
    } finally {
      await trusting.close();
      await direct.close();
    }
  });
});

describe("when Redis is down", () => {
  it("fails closed with SERVICE_UNAVAILABLE when configured so", async () => {
    const own = await startStack({ REDIS_URL: "redis://127.0.0.1:1", RATE_LIMIT_FAILURE_MODE: "closed" });
    try {
      const res = await own.graphql(MeDocument, {});
      expect(res.status).toBe(503);
      expect(res.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
    } finally {
      await own.close();
    }
  });

  it("fails open when configured so, logs it and reports it in /ready", async () => {
    const own = await startStack({ REDIS_URL: "redis://127.0.0.1:1", RATE_LIMIT_FAILURE_MODE: "open" });
    try {
      const { res } = await post(own.url, "{ datasets(first: 1) { pageInfo { hasNextPage } } }");
      expect(res.status).toBe(200);
      const ready = await fetch(`${own.url}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { failed: string[] }).failed).toEqual(["redis"]);
      expect(own.logText()).toMatch(/rate limit/i);
    } finally {
      await own.close();
    }
  });
});

describe("query limits", () => {
  it("refuse a depth-50 query before executing it", async () => {
    let inner = "id";
    for (let i = 0; i < 25; i++) inner = `runs(first: 1) { edges { node { pipeline { ${inner} } } } }`;
    const query = `{ pipelines(first: 1) { edges { node { ${inner} } } } }`;
    const { res, body } = await post(stack.url, query);
    expect(res.status).toBe(400);
    expect(body.data).toBeUndefined();
    expect(body.errors?.[0]?.extensions?.code).toBe("GRAPHQL_VALIDATION_FAILED");
    expect(body.errors?.some((e) => /depth limit of 12 exceeded/i.test(e.message))).toBe(true);
  });

  it("refuse 1,000 aliases (the token limit stops it while parsing) and 40 at validation", async () => {
    const aliases = (n: number) =>
      `{ ${Array.from({ length: n }, (_, i) => `a${i}: node(id: "x") { id }`).join(" ")} }`;
    const many = await post(stack.url, aliases(1000));
    expect(many.res.status).toBe(400);
    expect(many.body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/contains more th\w+ 5000 tokens/i),
      extensions: { code: "GRAPHQL_PARSE_FAILED" },
    });
    const some = await post(stack.url, aliases(40));
    expect(some.res.status).toBe(400);
    expect(some.body.errors?.[0]?.message).toMatch(/aliases limit of 30 exceeded/i);
  });

  it("refuse first: 100000 by its cost before executing, and any page over the maximum", async () => {
    const huge = await post(stack.url, "{ datasets(first: 100000) { pageInfo { hasNextPage } } }");
    expect(huge.res.status).toBe(400);
    expect(huge.body.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/cost limit of 50000 exceeded/i),
      extensions: { code: "GRAPHQL_VALIDATION_FAILED" },
    });
    for (const args of ["(first: 1000)", ""]) {
      const { body } = await post(stack.url, `{ datasets${args} { pageInfo { hasNextPage } } }`);
      expect(body.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", max: 100 });
    }
  });
});

describe("HTTPS", () => {
  it("is served directly when a certificate and key are configured", async () => {
    const dir = mkdtempSync(join(tmpdir(), "datahus-tls-"));
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
    writeFileSync(join(dir, "README"), "test certificate");
    const own = await startStack({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key });
    try {
      expect(own.url.startsWith("https://")).toBe(true);
      const status = await new Promise<number>((resolve, reject) => {
        const req = request(`${own.url}/health`, { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(200);
    } finally {
      await own.close();
    }
  });
});
