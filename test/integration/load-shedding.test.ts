// Load shedding on the real stack: past LOAD_MAX_IN_FLIGHT, or with the event loop behind by more
// than LOAD_MAX_EVENT_LOOP_DELAY_MS, a request is answered 503 SERVICE_UNAVAILABLE with
// Retry-After at once; health, readiness and metrics are always answered; nothing stays counted
// once the load is gone. Only codes are asserted: timings live in bench/load.bench.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MeDocument } from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

describe("requests in flight", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ LOAD_MAX_IN_FLIGHT: "3", LOAD_RETRY_AFTER_SECONDS: "2" });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("past the bound are refused at once with 503 and Retry-After, in the API's error shape", async () => {
    const buyer = await stack.signup("Crowd");
    const responses = await Promise.all(
      Array.from({ length: 60 }, () => stack.graphql(MeDocument, {}, buyer.headers)),
    );
    const ok = responses.filter((r) => r.status === 200);
    const shed = responses.filter((r) => r.status === 503);
    expect(ok.length + shed.length).toBe(60);
    expect(ok.length).toBeGreaterThanOrEqual(3);
    expect(shed.length).toBeGreaterThan(0);
    for (const r of ok) expect(r.data?.me.scopes).toBeDefined();
    for (const r of shed) {
      expect(r.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
      expect(r.headers.get("retry-after")).toBe("2");
    }

    const rest = await Promise.all(
      Array.from({ length: 40 }, () =>
        fetch(`${stack.url}/api/v1/data/query?dataset=nothing`, { headers: buyer.headers }),
      ),
    );
    const restShed = rest.filter((r) => r.status === 503);
    expect(rest.map((r) => r.status).filter((s) => s >= 500 && s !== 503)).toEqual([]);
    expect(restShed.length).toBeGreaterThan(0);
    expect(await restShed[0]!.json()).toMatchObject({ error: { code: "SERVICE_UNAVAILABLE" } });
  });

  it("never shed health, readiness and metrics, and count nothing once the load is gone", async () => {
    const buyer = await stack.signup("Operator");
    const load = Promise.all(Array.from({ length: 40 }, () => stack.graphql(MeDocument, {}, buyer.headers)));
    const probes = await Promise.all(
      ["/health", "/ready", "/metrics"].flatMap((path) => [1, 2, 3].map(() => fetch(`${stack.url}${path}`))),
    );
    await load;
    expect(probes.map((r) => r.status)).toEqual(Array(9).fill(200));
    const gauge = await until("the in-flight gauge back to zero", async () => {
      const text = await (await fetch(`${stack.url}/metrics`)).text();
      return /^datahus_http_requests_in_flight 0$/m.test(text) ? text : null;
    });
    expect(gauge).toMatch(/datahus_http_shed_requests_total\{reason="inFlight"\} [1-9]/);
    const after = await stack.graphql(MeDocument, {}, buyer.headers);
    expect(after.status).toBe(200);
  });
});

describe("queued work", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack({ LOAD_MAX_EVENT_LOOP_DELAY_MS: "100" });
  });

  afterAll(async () => {
    await stack?.close();
  });

  it("an event loop running behind sheds requests until it catches up", async () => {
    const buyer = await stack.signup("Behind");
    // The API shares this process: blocking it is exactly a backlog of CPU work.
    const statuses: number[] = [];
    await until(
      "a request shed for event-loop delay",
      async () => {
        const end = Date.now() + 1500;
        while (Date.now() < end) {
          // busy
        }
        const res = await stack.graphql(MeDocument, {}, buyer.headers);
        statuses.push(res.status);
        if (res.status !== 503) return null;
        expect(res.errors?.[0]?.extensions?.code).toBe("SERVICE_UNAVAILABLE");
        expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
        return true;
      },
      30_000,
    );
    expect((await fetch(`${stack.url}/health`)).status).toBe(200);
    await until(
      "requests served again",
      async () => (await stack.graphql(MeDocument, {}, buyer.headers)).status === 200,
    );
  });
});
