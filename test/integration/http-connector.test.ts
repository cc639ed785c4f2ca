// The HTTP API source against a real loopback server: pagination styles, auth, retries and the
// circuit breaker. Waits are recorded through an injected `sleep`, so nothing waits for real.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { failure } from "../support/failures.js";
import { CircuitBreaker, CircuitBreakerRegistry } from "../../src/sources/connectors/http.breaker.js";
import {
  parseHttpSourceConfig,
  type HttpSecrets,
  type HttpSourceConfigInput,
} from "../../src/sources/connectors/http.config.js";
import {
  fetchRecords,
  httpConnector,
  type HttpFetchOptions,
} from "../../src/sources/connectors/http.connector.js";
import { linkHeaderNext } from "../../src/sources/connectors/http.pagination.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import type { ConnectorContext, ConnectorLog } from "../../src/sources/connectors/types.js";

type Handler = (
  req: IncomingMessage,
  url: URL,
  body: string,
) => { status?: number; headers?: Record<string, string>; body: unknown };

let server: Server;
let base: string;
const routes = new Map<string, Handler>();
let requests: { path: string; query: URLSearchParams; headers: IncomingMessage["headers"]; body: string }[] =
  [];

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const url = new URL(req.url ?? "/", base);
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ path: url.pathname, query: url.searchParams, headers: req.headers, body });
      const handler = routes.get(url.pathname);
      const answer = handler ? handler(req, url, body) : { status: 404, body: { error: "no route" } };
      const text = typeof answer.body === "string" ? answer.body : JSON.stringify(answer.body);
      res.writeHead(answer.status ?? 200, { "content-type": "application/json", ...answer.headers });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  requests = [];
  routes.clear();
});

function recorder() {
  const lines: string[] = [];
  const log: ConnectorLog = {
    debug: (fields, message) => lines.push(JSON.stringify({ level: "debug", message, ...fields })),
    info: (fields, message) => lines.push(JSON.stringify({ level: "info", message, ...fields })),
    warn: (fields, message) => lines.push(JSON.stringify({ level: "warn", message, ...fields })),
  };
  return { log, lines };
}

/** Options with recorded sleeps, a private breaker registry and a fixed clock unless given. */
function harness(extra: Partial<HttpFetchOptions> = {}) {
  const { log, lines } = recorder();
  const sleeps: number[] = [];
  const options: HttpFetchOptions = {
    log,
    breakers: new CircuitBreakerRegistry(),
    sleep: async (ms) => void sleeps.push(ms),
    random: () => 0.5,
    ...extra,
  };
  return { options, lines, sleeps };
}

async function collect(
  input: HttpSourceConfigInput,
  secrets: HttpSecrets = {},
  extra: Partial<HttpFetchOptions> = {},
) {
  const h = harness(extra);
  const stream = fetchRecords(parseHttpSourceConfig(input), secrets, h.options);
  const items = [];
  for await (const item of stream) items.push(item);
  return { ...h, items, result: await stream.result };
}

const ids = (items: { record: Record<string, unknown> }[]) => items.map((i) => i.record.id);
const rows = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => ({ id: from + i }));

describe("config", () => {
  it("lists every problem at once", async () => {
    const error = await failure(async () =>
      parseHttpSourceConfig({
        url: "ftp://example.com",
        method: "PUT",
        auth: { type: "bearer", token: "s3cret-in-config" },
        pagination: { type: "offset", param: "offset" },
        maxPages: 0,
      }),
    );
    expect(error.code).toBe("BAD_USER_INPUT");
    const problems = error.fields.problems as string[];
    expect(problems.map((p) => p.split(":")[0])).toEqual(
      expect.arrayContaining([
        "url",
        "method",
        "auth",
        "pagination.limitParam",
        "pagination.limit",
        "maxPages",
      ]),
    );
    expect(error.message).not.toContain("s3cret-in-config");
  });

  it("refuses missing secrets without echoing any", async () => {
    const config = parseHttpSourceConfig({ url: `${base}/x`, auth: { type: "basic" } });
    const error = await failure(async () => fetchRecords(config, { username: "ann" }, harness().options));
    expect(error.fields.problems).toEqual(["password: is required for basic auth"]);
  });
});

describe("records and pagination", () => {
  it("reads records at recordsPath, and a bare array body", async () => {
    routes.set("/nested", () => ({ body: { data: { items: rows(0, 3) } } }));
    routes.set("/bare", () => ({ body: rows(0, 2) }));
    const nested = await collect({ url: `${base}/nested`, recordsPath: "data.items" });
    expect(ids(nested.items)).toEqual([0, 1, 2]);
    expect(nested.result).toMatchObject({ pages: 1, records: 3, truncated: false });
    const bare = await collect({ url: `${base}/bare` });
    expect(ids(bare.items)).toEqual([0, 1]);
  });

  it("follows a cursor until the response has none", async () => {
    const next: Record<string, string | null> = { "": "c1", c1: "c2", c2: null };
    routes.set("/cursor", (_req, url) => {
      const at = url.searchParams.get("after") ?? "";
      const start = Object.keys(next).indexOf(at) * 2;
      return { body: { items: rows(start, start + 2), meta: { next: next[at] } } };
    });
    const { items, result } = await collect({
      url: `${base}/cursor`,
      recordsPath: "items",
      pagination: { type: "cursor", param: "after", responsePath: "meta.next" },
    });
    expect(ids(items)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(items.map((i) => i.page)).toEqual([1, 1, 2, 2, 3, 3]);
    expect(requests.map((r) => r.query.get("after"))).toEqual([null, "c1", "c2"]);
    expect(result.pages).toBe(3);
  });

  it("follows next links from the body and from the Link header", async () => {
    routes.set("/body-link", (_req, url) => {
      const p = Number(url.searchParams.get("p") ?? 1);
      return { body: { items: rows(p * 10, p * 10 + 1), next: p < 3 ? `/body-link?p=${p + 1}` : null } };
    });
    const fromBody = await collect({
      url: `${base}/body-link`,
      recordsPath: "items",
      pagination: { type: "nextLink", responsePath: "next" },
    });
    expect(ids(fromBody.items)).toEqual([10, 20, 30]);

    routes.set("/header-link", (_req, url) => {
      const p = Number(url.searchParams.get("p") ?? 1);
      const link = `<${base}/header-link?p=1>; rel="first", <${base}/header-link?p=${p + 1}>; rel="next"`;
      return { headers: p < 2 ? { link } : undefined, body: rows(p, p + 1) };
    });
    const fromHeader = await collect({ url: `${base}/header-link`, pagination: { type: "nextLink" } });
    expect(ids(fromHeader.items)).toEqual([1, 2]);
  });

  it("refuses a next link to another origin, since credentials go with every page", async () => {
    routes.set("/evil", () => ({ body: { items: rows(0, 1), next: "http://attacker.test/steal" } }));
    const error = await failure(() =>
      collect(
        {
          url: `${base}/evil`,
          recordsPath: "items",
          auth: { type: "bearer" },
          pagination: { type: "nextLink", responsePath: "next" },
        },
        { token: "tok-123" },
      ),
    );
    expect(error.message).toContain("another origin");
    expect(requests).toHaveLength(1);
  });

  it("pages by number until a short page, or until an empty page without a size", async () => {
    routes.set("/pages", (_req, url) => {
      const page = Number(url.searchParams.get("page"));
      return { body: rows(page * 100, page * 100 + (page < 3 ? 2 : page === 3 ? 1 : 0)) };
    });
    const sized = await collect({
      url: `${base}/pages`,
      pagination: { type: "page", param: "page", start: 1, size: 2, sizeParam: "per_page" },
    });
    expect(ids(sized.items)).toEqual([100, 101, 200, 201, 300]);
    expect(requests.map((r) => [r.query.get("page"), r.query.get("per_page")])).toEqual([
      ["1", "2"],
      ["2", "2"],
      ["3", "2"],
    ]);
    requests = [];
    const unsized = await collect({
      url: `${base}/pages`,
      pagination: { type: "page", param: "page", start: 2 },
    });
    expect(ids(unsized.items)).toEqual([200, 201, 300]);
    expect(requests.map((r) => r.query.get("page"))).toEqual(["2", "3", "4"]);
  });

  it("pages by offset, in the POST body when the method is POST", async () => {
    const data = rows(0, 7);
    routes.set("/offset", (_req, _url, body) => {
      const { skip, take } = JSON.parse(body) as { skip: number; take: number };
      return { body: { results: data.slice(skip, skip + take) } };
    });
    const { items } = await collect({
      url: `${base}/offset`,
      method: "POST",
      body: { filter: "all" },
      recordsPath: "results",
      pagination: { type: "offset", param: "skip", limitParam: "take", limit: 3 },
    });
    expect(ids(items)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(requests.map((r) => JSON.parse(r.body) as unknown)).toEqual([
      { filter: "all", skip: 0, take: 3 },
      { filter: "all", skip: 3, take: 3 },
      { filter: "all", skip: 6, take: 3 },
    ]);
  });

  it("stops at maxPages and says the sync was truncated", async () => {
    routes.set("/endless", (_req, url) => {
      const page = Number(url.searchParams.get("page"));
      return { body: rows(page, page + 1) };
    });
    const { items, result, lines } = await collect({
      url: `${base}/endless`,
      maxPages: 3,
      pagination: { type: "page", param: "page" },
    });
    expect(ids(items)).toEqual([1, 2, 3]);
    expect(requests).toHaveLength(3);
    expect(result).toMatchObject({ pages: 3, truncated: true });
    expect(lines.some((l) => l.includes("maxPages"))).toBe(true);
  });

  it("sends the checkpoint and returns the largest incremental value", async () => {
    routes.set("/changes", () => ({
      body: [
        { id: 1, meta: { updatedAt: "2026-01-02T00:00:00Z" } },
        { id: 2, meta: { updatedAt: "2026-01-05T00:00:00Z" } },
        { id: 3, meta: { updatedAt: "2026-01-03T00:00:00Z" } },
      ],
    }));
    const { result } = await collect(
      { url: `${base}/changes`, incremental: { field: "meta.updatedAt", param: "since" } },
      {},
      { checkpoint: "2026-01-01T00:00:00Z" },
    );
    expect(requests[0]?.query.get("since")).toBe("2026-01-01T00:00:00Z");
    expect(result.checkpoint).toBe("2026-01-05T00:00:00Z");
  });

  it("fails clearly on a body that is not JSON, or a recordsPath that is not an array", async () => {
    routes.set("/html", () => ({ headers: { "content-type": "text/html" }, body: "<html>login</html>" }));
    routes.set("/object", () => ({ body: { data: { items: { id: 1 } } } }));
    const html = await failure(() => collect({ url: `${base}/html` }));
    expect(html.code).toBe("BAD_USER_INPUT");
    expect(html.message).toBe(`${base}/html did not answer JSON`);
    expect(html.fields.contentType).toBe("text/html");
    const object = await failure(() => collect({ url: `${base}/object`, recordsPath: "data.items" }));
    expect(object.message).toContain('recordsPath "data.items" is object, not an array');
  });
});

describe("auth", () => {
  const secret = "S3CRET-value-9f8e";
  const cases: [string, HttpSourceConfigInput["auth"], HttpSecrets, string, string][] = [
    ["header", { type: "header", name: "X-Api-Key" }, { headerValue: secret }, "x-api-key", secret],
    ["bearer", { type: "bearer" }, { token: secret }, "authorization", `Bearer ${secret}`],
    [
      "basic",
      { type: "basic" },
      { username: "ann", password: secret },
      "authorization",
      `Basic ${Buffer.from(`ann:${secret}`).toString("base64")}`,
    ],
  ];

  it.each(cases)(
    "%s credentials reach the API and never an error or a log line",
    async (_, auth, secrets, header, expected) => {
      routes.set("/private", (req) =>
        req.headers[header] === expected ? { body: rows(0, 1) } : { status: 401, body: { error: "who?" } },
      );
      const ok = await collect({ url: `${base}/private?key=q`, auth }, secrets);
      expect(ids(ok.items)).toEqual([0]);

      // Rejected, then failing: every message and log line must be free of the secret.
      routes.set("/private", () => ({ status: 401, body: { error: secret } }));
      const h = harness();
      const run = async () => {
        for await (const _ of fetchRecords(
          parseHttpSourceConfig({ url: `${base}/private`, auth }),
          secrets,
          h.options,
        ))
          void _;
      };
      const rejected = await failure(run);
      expect(rejected.fields.status).toBe(401);
      routes.set("/private", () => ({ status: 500, body: { error: secret } }));
      const failed = await failure(run);
      expect(failed.code).toBe("SERVICE_UNAVAILABLE");
      const base64 = Buffer.from(`ann:${secret}`).toString("base64");
      for (const text of [
        rejected.message,
        failed.message,
        JSON.stringify(rejected.fields),
        JSON.stringify(failed.fields),
        ...h.lines,
      ]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(base64);
      }
      expect(h.lines.filter((l) => l.includes("retrying"))).toHaveLength(3);
    },
  );
});

describe("retries", () => {
  it("honours Retry-After in seconds and as an HTTP date on 429 and 503", async () => {
    const now = Date.parse("2026-03-01T12:00:00Z");
    const answers = [
      { status: 429, headers: { "retry-after": "2" }, body: {} },
      { status: 503, headers: { "retry-after": new Date(now + 7_000).toUTCString() }, body: {} },
      { body: rows(0, 1) },
    ];
    routes.set("/limited", () => answers.shift() ?? { status: 500, body: {} });
    const { items, sleeps } = await collect({ url: `${base}/limited` }, {}, { now: () => now });
    expect(ids(items)).toEqual([0]);
    expect(sleeps).toEqual([2_000, 7_000]);
  });

  it("fails instead of waiting longer than maxRetryAfterMs", async () => {
    routes.set("/later", () => ({ status: 429, headers: { "retry-after": "3600" }, body: {} }));
    const error = await failure(() => collect({ url: `${base}/later` }));
    expect(error.code).toBe("SERVICE_UNAVAILABLE");
    expect(error.fields).toMatchObject({ status: 429, retryAfterSeconds: 3600 });
    expect(requests).toHaveLength(1);
  });

  it("retries 500s with exponential backoff, then succeeds", async () => {
    let calls = 0;
    routes.set("/flaky", () => (++calls <= 2 ? { status: 500, body: {} } : { body: rows(0, 2) }));
    const { items, sleeps } = await collect({ url: `${base}/flaky`, retry: { baseDelayMs: 100 } });
    expect(ids(items)).toEqual([0, 1]);
    // random() is 0.5: each wait is three quarters of its exponential step.
    expect(sleeps).toEqual([75, 150]);
  });

  it("does not retry a 404", async () => {
    const error = await failure(() => collect({ url: `${base}/missing` }));
    expect(error.code).toBe("BAD_USER_INPUT");
    expect(error.fields.status).toBe(404);
    expect(requests).toHaveLength(1);
  });

  it("retries network errors and gives up with a reason", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { options, sleeps } = harness();
    const error = await failure(async () => {
      for await (const _ of fetchRecords(
        parseHttpSourceConfig({ url: `http://127.0.0.1:${port}/` }),
        {},
        options,
      ))
        void _;
    });
    expect(error.code).toBe("SERVICE_UNAVAILABLE");
    expect(error.fields).toMatchObject({ attempts: 4, reason: "ECONNREFUSED" });
    expect(sleeps).toHaveLength(3);
  });
});

describe("circuit breaker", () => {
  it("opens after N failures, fails fast, and closes after one good trial", () => {
    const breaker = new CircuitBreaker({ failureThreshold: 3, coolDownMs: 60_000 });
    let now = 0;
    breaker.recordFailure(now);
    breaker.recordFailure(now);
    breaker.recordSuccess();
    breaker.recordFailure(now);
    breaker.recordFailure(now);
    expect(breaker.state(now)).toBe("closed");
    breaker.recordFailure(now);
    expect(breaker.state(now)).toBe("open");
    now = 45_000;
    expect(() => breaker.acquire(now)).toThrow(
      expect.objectContaining({ code: "SERVICE_UNAVAILABLE", fields: { retryAfterSeconds: 15 } }),
    );
    now = 60_000;
    expect(breaker.state(now)).toBe("halfOpen");
    breaker.acquire(now);
    expect(() => breaker.acquire(now)).toThrow(AppError); // only one trial at a time
    breaker.recordFailure(now);
    expect(breaker.state(now + 59_999)).toBe("open");
    now += 60_000;
    breaker.acquire(now);
    breaker.recordSuccess();
    expect(breaker.state(now)).toBe("closed");
  });

  it("stops calling a failing API until the cool-down has passed", async () => {
    let healthy = false;
    routes.set("/down", () => (healthy ? { body: rows(0, 1) } : { status: 502, body: {} }));
    let now = 1_000_000;
    const { options } = harness({ now: () => now, sourceId: "source-1" });
    const config = parseHttpSourceConfig({
      url: `${base}/down`,
      retry: { attempts: 2 },
      breaker: { failureThreshold: 5, coolDownMs: 30_000 },
    });
    const sync = async () => {
      const stream = fetchRecords(config, {}, options);
      for await (const _ of stream) void _;
      return stream.result;
    };

    const first = await failure(sync); // 2 failed requests
    const second = await failure(sync); // 2 more
    expect([first.fields.status, second.fields.status]).toEqual([502, 502]);
    const third = await failure(sync); // the fifth request opens the circuit, the sixth is not sent
    expect(third.fields).toEqual({ retryAfterSeconds: 30 });
    expect(requests).toHaveLength(5);

    now += 10_000;
    const fast = await failure(sync);
    expect(fast.code).toBe("SERVICE_UNAVAILABLE");
    expect(fast.fields).toEqual({ retryAfterSeconds: 20 });
    expect(requests).toHaveLength(5);

    now += 20_000;
    healthy = true;
    await expect(sync()).resolves.toMatchObject({ records: 1 });
    expect(requests).toHaveLength(6);
    await expect(sync()).resolves.toMatchObject({ records: 1 });
  });
});

describe("Link header", () => {
  it("finds rel=next among several links and relation types", () => {
    expect(linkHeaderNext('<https://a/1>; rel="prev", <https://a/3>; rel="next last"')).toBe("https://a/3");
    expect(linkHeaderNext("<https://a/2>;rel=next")).toBe("https://a/2");
    expect(linkHeaderNext('<https://a/1>; rel="prev"')).toBeUndefined();
  });
});

describe("as a Connector (what the pipeline runner and testSourceConnection use)", () => {
  const context = (
    config: Record<string, unknown>,
    extra: Partial<ConnectorContext> = {},
  ): ConnectorContext => ({
    sourceId: `src-${Math.random()}`,
    runId: "run-1",
    config,
    secrets: {},
    checkpoint: null,
    mode: "INCREMENTAL",
    log: recorder().log,
    signal: new AbortController().signal,
    ...extra,
  });

  it("is registered for HTTP and validates settings and secrets, naming fields only", () => {
    expect(connectorFor("HTTP")).toBe(httpConnector);
    expect(httpConnector.validate({ url: `${base}/x` }, {})).toEqual([]);
    expect(httpConnector.validate({ url: `${base}/x`, auth: { type: "bearer" } }, {})).toEqual([
      "token: is required for bearer auth",
    ]);
    const problems = httpConnector.validate({ url: "ftp://x", maxPages: 0 }, { token: "t0ps3cret" });
    expect(problems.map((p) => p.split(":")[0])).toEqual(["url", "maxPages"]);
    expect(problems.join(" ")).not.toContain("t0ps3cret");
  });

  it("reads records as source rows and leaves the largest cursor as the checkpoint", async () => {
    routes.set("/changes", (_req, url) => {
      const since = url.searchParams.get("since") ?? "";
      const all = [
        { id: 1, updatedAt: "2026-01-02T00:00:00Z" },
        { id: 2, updatedAt: "2026-01-05T00:00:00Z" },
        { id: 3, updatedAt: "2026-01-03T00:00:00Z" },
      ];
      return { body: all.filter((r) => r.updatedAt > since) };
    });
    const config = { url: `${base}/changes`, incremental: { field: "updatedAt", param: "since" } };
    const first = httpConnector.read(context(config));
    const rowsRead = [];
    for await (const row of first) rowsRead.push(row);
    expect(rowsRead).toEqual([
      {
        ok: true,
        rowNumber: 1,
        record: { id: 1, updatedAt: "2026-01-02T00:00:00Z" },
        bytes: 43,
        origin: "page 1",
      },
      {
        ok: true,
        rowNumber: 2,
        record: { id: 2, updatedAt: "2026-01-05T00:00:00Z" },
        bytes: 43,
        origin: "page 1",
      },
      {
        ok: true,
        rowNumber: 3,
        record: { id: 3, updatedAt: "2026-01-03T00:00:00Z" },
        bytes: 43,
        origin: "page 1",
      },
    ]);
    expect(first.checkpoint()).toBe("2026-01-05T00:00:00Z");
    expect(requests[0]?.query.has("since")).toBe(false);

    // The next incremental sync sends it back and, with nothing new, keeps it.
    const second = httpConnector.read(context(config, { checkpoint: first.checkpoint() }));
    const again = [];
    for await (const row of second) again.push(row);
    expect(again).toEqual([]);
    expect(requests[1]?.query.get("since")).toBe("2026-01-05T00:00:00Z");
    expect(second.checkpoint()).toBe("2026-01-05T00:00:00Z");

    // A full refresh reads everything, whatever the checkpoint.
    const full = httpConnector.read(
      context(config, { checkpoint: "2026-01-05T00:00:00Z", mode: "FULL_REFRESH" }),
    );
    let n = 0;
    for await (const row of full) n += row.ok ? 1 : 0;
    expect(n).toBe(3);
    expect(requests[2]?.query.has("since")).toBe(false);
  });

  it("samples the first records of the first page only", async () => {
    routes.set("/paged", (_req, url) => {
      const page = Number(url.searchParams.get("page") ?? "1");
      return { body: { items: rows((page - 1) * 10, page * 10), next: page + 1 } };
    });
    const { records, message } = await httpConnector.sample(
      {
        sourceId: "sample",
        config: { url: `${base}/paged`, recordsPath: "items", pagination: { type: "page", param: "page" } },
        secrets: {},
        log: recorder().log,
        signal: new AbortController().signal,
      },
      3,
    );
    expect(records).toEqual(rows(0, 3));
    expect(message).toBe("Read 3 record(s) from the first page");
    expect(requests).toHaveLength(1);
  });
});
