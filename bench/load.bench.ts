// Load shedding under 200 connections for 60 s on loopback (issue 14, finding 7), three runs in
// one: the API with shedding off (the behaviour before: every request queued), with its default
// bounds (LOAD_MAX_IN_FLIGHT, LOAD_MAX_EVENT_LOOP_DELAY_MS) but without `gc` (node with no
// --expose-gc: nothing gives the burst's memory back), and with its defaults as deployed. The API
// is `datahus serve` in a process of its own (dist/src/main.js, logging at info as deployed, to
// nowhere), so its memory is its own; autocannon runs in another (bench/support/load-runner.mjs)
// against `me` (authentication, rate limiter, PostgreSQL). Prints answers by status, p50/p99 of
// the answered and of the shed requests, and the API process's RSS (/proc VmRSS) before, right
// after and a minute after the load against issue 14's aim, with V8's heap and external memory
// beside it (from its /metrics). Asserts only codes: no 5xx but 503 SERVICE_UNAVAILABLE with
// shedding on. See bench/README.md.
import { execFile } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { SetAccountPlanDocument } from "../test/generated/graphql.js";
import { startStack, type TestStack } from "../test/support/stack.js";
import { residentMemory, spawnApi } from "../test/support/worker-process.js";
import { table } from "./support/measure.js";

const CONNECTIONS = process.env.BENCH_LOAD_CONNECTIONS ?? "200";
const SECONDS = process.env.BENCH_LOAD_SECONDS ?? "60";
const SETTLE_MS = Number(process.env.BENCH_LOAD_SETTLE_MS ?? 60_000);
/**
 * node's arguments for the API process, space-separated: by default those it is deployed with
 * (Dockerfile, `npm start`: --expose-gc lets it give memory back once idle, idle-collection.ts).
 */
const API_NODE_ARGS = (process.env.BENCH_LOAD_NODE_ARGS ?? "--expose-gc").split(" ").filter(Boolean);
const RUNNER = new URL("./support/load-runner.mjs", import.meta.url).pathname;
const BODY = JSON.stringify({ query: "{ me { scopes account { creditBalance } } }" });
/** Issue 14: resident memory back within 20% of its starting value a minute after the load. */
const RSS_AIM = 0.2;

interface Summary {
  count: number;
  p50: number | null;
  p99: number | null;
  max: number | null;
}
interface LoadResult {
  statuses: Record<string, number>;
  codes: Record<string, number>;
  sent: number;
  errors: number;
  timeouts: number;
  answered: Summary;
  shed: Summary;
  requestsPerSecond: number;
}
/** The API process's memory at one moment: the kernel's RSS, and V8's share of it. */
interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

const stacks: TestStack[] = [];
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
const ms = (value: number | null) => (value === null ? "-" : value.toFixed(0));

afterAll(async () => {
  for (const stack of stacks) await stack.close();
});

/** One gauge of prom-client's default metrics (prefix datahus_) from the API's /metrics text. */
function gauge(text: string, name: string): number {
  const match = new RegExp(`^datahus_${name} (\\S+)`, "m").exec(text);
  return match ? Number(match[1]) : NaN;
}

async function memory(pid: number, url: string): Promise<Memory> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return {
    rss: residentMemory(pid),
    heapUsed: gauge(text, "nodejs_heap_size_used_bytes"),
    heapTotal: gauge(text, "nodejs_heap_size_total_bytes"),
    external: gauge(text, "nodejs_external_memory_bytes"),
  };
}

async function run(label: string, load: Record<string, string>, nodeArgs = API_NODE_ARGS) {
  const stack = await startStack();
  stacks.push(stack);
  const admin = await stack.admin();
  const buyer = await stack.signup(`Load ${label}`);
  // The highest per-minute limit an account may have: the limiter stays in the path, never refuses.
  const plan = await stack.graphql(
    SetAccountPlanDocument,
    { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 1_000_000 },
    admin.headers,
  );
  expect(plan.errors).toBeUndefined();
  const api = await spawnApi(stack, { LOG_LEVEL: "info", ...load }, nodeArgs);
  const pid = api.child.pid!;
  try {
    const before = await memory(pid, api.url);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [RUNNER, api.url, JSON.stringify(buyer.headers), BODY, CONNECTIONS, SECONDS],
      { maxBuffer: 16 * 1024 * 1024 },
    );
    const result = JSON.parse(stdout) as LoadResult;
    const after = await memory(pid, api.url);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const settled = await memory(pid, api.url);
    return { label, result, before, after, settled };
  } finally {
    const exited = once(api.child, "exit");
    api.child.kill("SIGTERM");
    await exited;
    await stack.close();
    stacks.pop();
  }
}

it(`sheds instead of queueing at ${CONNECTIONS} connections for ${SECONDS} s`, async () => {
  const defaults = loadConfig({});
  const load = `load average before: ${readFileSync("/proc/loadavg", "utf8").trim()}`;
  const bounds = {
    LOAD_MAX_IN_FLIGHT: String(defaults.LOAD_MAX_IN_FLIGHT),
    LOAD_MAX_EVENT_LOOP_DELAY_MS: String(defaults.LOAD_MAX_EVENT_LOOP_DELAY_MS),
  };
  const queued = await run("queued (shedding off)", {
    LOAD_MAX_IN_FLIGHT: "0",
    LOAD_MAX_EVENT_LOOP_DELAY_MS: "0",
  });
  // The same API without `gc`: what V8 alone gives back after the load.
  const unreleased = await run("defaults, no --expose-gc", bounds, []);
  const shedding = await run("shedding (defaults)", bounds);
  const runs = [queued, unreleased, shedding];
  const rows = runs.map(({ label, result, before, after, settled }) => {
    const ratio = settled.rss / before.rss;
    return [
      label,
      String(result.statuses["200"] ?? 0),
      String(result.statuses["503"] ?? 0),
      JSON.stringify(result.codes),
      `${result.sent} / ${result.timeouts}`,
      result.requestsPerSecond.toFixed(0),
      `${ms(result.answered.p50)} / ${ms(result.answered.p99)}`,
      `${ms(result.shed.p50)} / ${ms(result.shed.p99)}`,
      `${mb(before.rss)} → ${mb(after.rss)} → ${mb(settled.rss)}`,
      `${ratio.toFixed(2)} (aim ≤ ${(1 + RSS_AIM).toFixed(2)}): ${ratio <= 1 + RSS_AIM ? "met" : "not met"}`,
    ];
  });
  console.log(
    table(
      [
        "run",
        "200",
        "503",
        "5xx codes",
        "sent / timed out",
        "req/s",
        "answered p50 / p99 ms",
        "shed p50 / p99 ms",
        `RSS MB before → after → +${SETTLE_MS / 1000}s`,
        `RSS +${SETTLE_MS / 1000}s / before`,
      ],
      rows,
    ),
  );
  // Where the resident memory is: V8's heap (used of total), memory outside it that JS objects
  // hold (external: buffers), and the rest (code, stacks, malloc arenas, the heap's freed pages).
  const breakdown = (m: Memory) =>
    `${mb(m.rss)} = heap ${mb(m.heapUsed)}/${mb(m.heapTotal)} + external ${mb(m.external)} + rest ${mb(m.rss - m.heapTotal - m.external)}`;
  console.log(
    table(
      ["run", "before", "after", `+${SETTLE_MS / 1000}s`],
      runs.map(({ label, before, after, settled }) => [
        label,
        breakdown(before),
        breakdown(after),
        breakdown(settled),
      ]),
    ),
  );
  console.log(`${load}; after: ${readFileSync("/proc/loadavg", "utf8").trim()}`);
  console.log(`API node arguments: ${API_NODE_ARGS.join(" ") || "(none)"}`);
  const other5xx = Object.entries(shedding.result.codes).filter(([key]) => key !== "503 SERVICE_UNAVAILABLE");
  expect(other5xx).toEqual([]);
});
