// `datahus all` as a new user runs it (scripts/start.sh): the API and the worker in one process,
// on the embedded ClickHouse, with no Redis. The process is real (dist/src/main.js), on a fresh
// PostgreSQL database and its own engine directory; the test drives it over HTTP only: /ready
// names the engine, a FILE pipeline runs in the same process and its rows read back, and rate
// limits hold without Redis. It runs in both engine passes of scripts/test.sh: it always uses
// the embedded engine of its own child process.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPrisma } from "../../src/db/prisma.js";
import type { PrismaClient } from "../../src/generated/prisma/client.js";
import { SignupDocument } from "../generated/graphql.js";
import { baseConfig, freshPostgres } from "../support/databases.js";
import { publishing } from "../support/publishing.js";
import type { GraphQLResponse, TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";
import { WORKER_MAIN } from "../support/worker-process.js";

let root: string;
let database: { url: string; drop(): Promise<void> };
let prisma: PrismaClient;
let child: ChildProcess;
let url: string;

const ANONYMOUS_PER_MINUTE = 30;

function env(): NodeJS.ProcessEnv {
  // Only what a user would set: no REDIS_URL, so limits and events stay in the process.
  return {
    NODE_ENV: "test",
    LOG_LEVEL: "info",
    PORT: "0",
    DATABASE_URL: database.url,
    CLICKHOUSE_URL: `embedded:${join(root, "chdb")}`,
    FILE_SOURCE_ROOT: join(root, "files"),
    ANONYMOUS_RATE_LIMIT_PER_MINUTE: String(ANONYMOUS_PER_MINUTE),
  };
}

/** Starts `datahus all` and resolves with the URL it logs once listening. */
function startAll(): Promise<string> {
  child = spawn(process.execPath, [WORKER_MAIN, "all"], { env: env(), stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      if (!line.startsWith("{")) return;
      const entry = JSON.parse(line) as { msg?: string; url?: string; engine?: string; redis?: string };
      if (entry.msg === "datahus API and worker listening") {
        expect(entry).toMatchObject({ engine: "embedded", redis: "off" });
        resolve(entry.url!);
      }
    });
    child.once("exit", (code) => reject(new Error(`datahus all exited with ${code} before listening`)));
  });
}

async function graphql<TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables?: TVars,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<TData>> {
  const response = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ query: print(document), variables }),
  });
  const body = (await response.json()) as Omit<GraphQLResponse<TData>, "status" | "headers">;
  return { status: response.status, headers: response.headers, ...body };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "datahus-all-"));
  await mkdir(join(root, "files"));
  database = await freshPostgres(baseConfig());
  // The ClickHouse tables come from `datahus migrate`, run first as a user would.
  const migrate = spawn(process.execPath, [WORKER_MAIN, "migrate"], { env: env(), stdio: "ignore" });
  const [code] = (await once(migrate, "exit")) as [number | null];
  expect(code, "datahus migrate").toBe(0);
  url = await startAll();
  prisma = createPrisma(database.url, 1);
}, 300_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  await prisma?.$disconnect();
  await database?.drop();
  if (root) await rm(root, { recursive: true, force: true });
}, 60_000);

describe("datahus all on the embedded engine, without Redis", () => {
  it("reports the embedded engine and its version on /ready, and no Redis check", async () => {
    type Report = {
      status: string;
      checks: Record<string, { ok: boolean; engine?: string; version?: string }>;
    };
    // Each check has 2 s: on a loaded machine the first may miss it, so ask until one passes.
    const ready = await until("/ready to pass", async () => {
      const report = (await (await fetch(`${url}/ready`)).json()) as Report;
      return report.status === "ok" ? report : undefined;
    });
    expect(ready.checks.clickhouse).toMatchObject({ ok: true, engine: "embedded" });
    expect(ready.checks.clickhouse!.version).toMatch(/^26\./);
    expect(Object.keys(ready.checks).sort()).toEqual(["clickhouse", "postgres"]);
  });

  it("runs a pipeline in the same process and serves its rows, decimals at their scale", async () => {
    const signup = await graphql(SignupDocument, {
      input: { name: "One Process", email: `one-${Date.now()}@example.com`, role: "PUBLISHER" },
    });
    const publisher = { headers: { "x-api-key": signup.data!.signup.apiKeySecret } };
    const stack = { graphql, app: { stores: { prisma } } } as unknown as TestStack;
    const journey = publishing(stack, publisher as never);
    await writeFile(
      join(root, "files", "prices.csv"),
      'id,name,price\n1,tea,2.20\n2,café,10\n3,"a, b",-0.05\n',
    );
    const dataset = await journey.dataset([
      { name: "id", type: "INT32", nullable: false },
      { name: "name", type: "STRING", nullable: false },
      { name: "price", type: "DECIMAL", precision: 12, scale: 2, nullable: false },
    ]);
    const sourceId = await journey.source("FILE", { path: "prices.csv" });
    const pipelineId = await journey.pipeline(sourceId, dataset.id, "FULL_REFRESH");
    const run = await journey.finished(await journey.run(pipelineId), 60_000);
    expect(run.status).toBe("SUCCEEDED");
    expect(await journey.records(dataset.slug)).toEqual([
      { id: 1, name: "tea", price: "2.20" },
      { id: 2, name: "café", price: "10.00" },
      { id: 3, name: "a, b", price: "-0.05" },
    ]);
  }, 90_000);

  it("limits anonymous callers in the process, with no Redis", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < ANONYMOUS_PER_MINUTE + 5; i++) {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "{ __typename }" }),
      });
      statuses.push(response.status);
    }
    // Earlier tests spent part of the minute's allowance; the last requests are over it.
    expect(statuses.slice(-5)).toEqual([429, 429, 429, 429, 429]);
  });
});
