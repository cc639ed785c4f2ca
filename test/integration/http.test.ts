// Process-level endpoints: health, readiness per dependency, metrics, request ids.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatasetsCountDocument } from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

describe("/health and /ready", () => {
  it("reports the process up", async () => {
    const res = await fetch(`${stack.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok" });
  });

  it("checks PostgreSQL, Redis and ClickHouse", async () => {
    const res = await fetch(`${stack.url}/ready`);
    const body = (await res.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(res.status).toBe(200);
    expect(body.status).toBe("ok");
    expect(Object.keys(body.checks).sort()).toEqual(["clickhouse", "postgres", "redis"]);
  });

  it("fails naming ClickHouse when ClickHouse is unreachable", async () => {
    // Port 1 on loopback: nothing listens there, so connections are refused at once.
    const broken = await startStack({ CLICKHOUSE_URL: "http://127.0.0.1:1" });
    try {
      const res = await fetch(`${broken.url}/ready`);
      const body = (await res.json()) as {
        status: string;
        failed: string[];
        checks: Record<string, { ok: boolean; error?: string }>;
      };
      expect(res.status).toBe(503);
      expect(body.status).toBe("fail");
      expect(body.failed).toEqual(["clickhouse"]);
      expect(body.checks.postgres?.ok).toBe(true);
      expect(body.checks.redis?.ok).toBe(true);
    } finally {
      await broken.close();
    }
  });
});

describe("request ids and metrics", () => {
  it("echoes a well-formed x-request-id and generates one otherwise", async () => {
    const given = await fetch(`${stack.url}/health`, { headers: { "x-request-id": "client-req-12345" } });
    expect(given.headers.get("x-request-id")).toBe("client-req-12345");
    const hostile = await fetch(`${stack.url}/health`, { headers: { "x-request-id": 'a b"<script>' } });
    expect(hostile.headers.get("x-request-id")).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("logs every request line with its request id", async () => {
    await fetch(`${stack.url}/health`, { headers: { "x-request-id": "log-check-0001" } });
    const lines = stack.logs.filter((l) => l.reqId === "log-check-0001");
    expect(lines.length).toBeGreaterThanOrEqual(2); // incoming request, request completed
  });

  it("counts operations, durations and errors by code in Prometheus format", async () => {
    await stack.graphql(DatasetsCountDocument, {});
    await stack.graphql(DatasetsCountDocument, {});
    const forged = await fetch(`${stack.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: '{ node(id: "forged") { id } }' }),
    });
    expect(forged.status).toBe(200);
    const res = await fetch(`${stack.url}/metrics`);
    const text = await res.text();
    expect(res.headers.get("content-type")).toMatch(/text\/plain/);
    expect(text).toMatch(/datahus_graphql_operations_total\{operation="DatasetsCount",type="query"\} 2/);
    expect(text).toMatch(
      /datahus_graphql_operation_duration_seconds_count\{operation="DatasetsCount",type="query"\} 2/,
    );
    expect(text).toMatch(/datahus_graphql_errors_total\{code="BAD_USER_INPUT"\} 1/);
    expect(text).toMatch(/datahus_http_requests_total\{method="GET",route="\/health",status="200"\}/);
  });

  it("rejects an oversized body before parsing it", async () => {
    const query = `{ datasets(first: 1) { pageInfo { hasNextPage } } } #${"x".repeat(2 * 1024 * 1024)}`;
    const res = await fetch(`${stack.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query }),
    });
    expect(res.status).toBe(413);
  });
});

describe("graceful shutdown", () => {
  it("finishes a request in flight before closing", async () => {
    const own = await startStack();
    // Hold a request open: its body arrives in two parts, the second after close() has begun.
    const body = JSON.stringify({ query: "{ datasets(first: 1) { pageInfo { hasNextPage } } }" });
    const { port } = new URL(own.url);
    const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port,
          path: "/graphql",
          method: "POST",
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
            connection: "close",
          },
        },
        (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString()));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
        },
      );
      req.on("error", reject);
      req.write(body.slice(0, 10));
      setTimeout(() => req.end(body.slice(10)), 300);
    });
    await new Promise((r) => setTimeout(r, 100));
    const closing = own.close();
    const res = await response;
    expect(res.status).toBe(200);
    expect(JSON.parse(res.text)).toEqual({ data: { datasets: { pageInfo: { hasNextPage: false } } } });
    await closing;
  });
});
