// Load shedding under 200 connections for 60 s on loopback (issue 14, finding 7): the API with its
// default bounds (LOAD_MAX_IN_FLIGHT, LOAD_MAX_EVENT_LOOP_DELAY_MS) beside the same API with
// shedding off (the behaviour before: every request queued), measured in the same run. autocannon
// runs in a process of its own (bench/support/load-runner.mjs) against `me` (authentication, rate
// limiter, PostgreSQL). Prints answers by status, p50/p99 of the answered and of the shed
// requests, and the API process's RSS before, right after and a minute after the load.
// Asserts only codes: no 5xx but 503 SERVICE_UNAVAILABLE with shedding on. See bench/README.md.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { SetAccountPlanDocument } from "../test/generated/graphql.js";
import { startStack, type TestStack } from "../test/support/stack.js";
import { table } from "./support/measure.js";

const CONNECTIONS = process.env.BENCH_LOAD_CONNECTIONS ?? "200";
const SECONDS = process.env.BENCH_LOAD_SECONDS ?? "60";
const SETTLE_MS = Number(process.env.BENCH_LOAD_SETTLE_MS ?? 60_000);
const RUNNER = new URL("./support/load-runner.mjs", import.meta.url).pathname;
const BODY = JSON.stringify({ query: "{ me { scopes account { creditBalance } } }" });

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

const stacks: TestStack[] = [];
const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

afterAll(async () => {
  for (const stack of stacks) await stack.close();
});

async function run(label: string, overrides: Record<string, string>) {
  const stack = await startStack(overrides);
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
  const before = process.memoryUsage().rss;
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [RUNNER, stack.url, JSON.stringify(buyer.headers), BODY, CONNECTIONS, SECONDS],
    { maxBuffer: 16 * 1024 * 1024 },
  );
  const result = JSON.parse(stdout) as LoadResult;
  const after = process.memoryUsage().rss;
  await new Promise((r) => setTimeout(r, SETTLE_MS));
  const settled = process.memoryUsage().rss;
  await stack.close();
  stacks.pop();
  return { label, result, before, after, settled };
}

it(`sheds instead of queueing at ${CONNECTIONS} connections for ${SECONDS} s`, async () => {
  const defaults = loadConfig({});
  const queued = await run("queued (shedding off)", {
    LOAD_MAX_IN_FLIGHT: "0",
    LOAD_MAX_EVENT_LOOP_DELAY_MS: "0",
  });
  const shedding = await run("shedding (defaults)", {
    LOAD_MAX_IN_FLIGHT: String(defaults.LOAD_MAX_IN_FLIGHT),
    LOAD_MAX_EVENT_LOOP_DELAY_MS: String(defaults.LOAD_MAX_EVENT_LOOP_DELAY_MS),
  });
  const rows = [queued, shedding].map(({ label, result, before, after, settled }) => [
    label,
    String(result.statuses["200"] ?? 0),
    String(result.statuses["503"] ?? 0),
    JSON.stringify(result.codes),
    `${result.sent} / ${result.timeouts}`,
    result.requestsPerSecond.toFixed(0),
    `${result.answered.p50} / ${result.answered.p99}`,
    `${result.shed.p50 ?? "-"} / ${result.shed.p99 ?? "-"}`,
    `${mb(before)} → ${mb(after)} → ${mb(settled)}`,
    `${((settled / before - 1) * 100).toFixed(0)}%`,
  ]);
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
        "RSS vs start",
      ],
      rows,
    ),
  );
  const other5xx = Object.entries(shedding.result.codes).filter(([key]) => key !== "503 SERVICE_UNAVAILABLE");
  expect(other5xx).toEqual([]);
});
