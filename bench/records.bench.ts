// The Marketplace read path on 1,000,000 records in one METERED dataset. A 100-record page near
// the start and near the end of the dataset through the whole HTTP + GraphQL + credits path, the
// same reads through ReadService (credits, no HTTP), through RecordsReader alone (the app's
// ClickHouse queries) and straight from ClickHouse's HTTP interface, with the ledger and usage
// steps timed alone; requests per second for concurrent readers; the NDJSON export against
// ClickHouse's own JSONEachRow output, with memory. Prints figures and the issue's aims next to
// the ratios measured in the same run; asserts only that every read returns the rows it should.
// Client, API and driver share one process, as in relay-paging.bench.ts. See bench/README.md.
import { spawnSync } from "node:child_process";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { cpus } from "node:os";
import { Readable } from "node:stream";
import { performance } from "node:perf_hooks";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, expect, it, onTestFinished } from "vitest";
import { LIVE, liveRows } from "../src/catalog/dataset-table.js";
import { clickHouseEngine, parseJsonEachRow } from "../src/db/clickhouse.js";
import { ident, join, sql, type Sql } from "../src/db/sql.js";
import { recordUsage } from "../src/credits/usage.js";
import { decodeGlobalId } from "../src/graphql/relay.js";
import { ROLE_SCOPES, system, type AuthenticatedCaller } from "../src/identity/caller.js";
import { encodeSortCursor, recordSortTerms } from "../src/records/order.js";
import { CostMeter, ref } from "../src/records/read.service.js";
import { RecordsReader, type RecordRow } from "../src/records/records.reader.js";
import type { ExportFormat } from "../src/records/export.engine.js";
import { writeRecords, type DatasetRef } from "../src/records/records.writer.js";
import type { Dataset } from "../src/generated/prisma/client.js";
import { CreateDatasetDocument, PublishDatasetDocument, RecordsDocument } from "../test/generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../test/support/stack.js";
import { spawnApi } from "../test/support/worker-process.js";
import { startLauncher } from "./support/launcher.js";
import {
  concurrentSlice,
  figures,
  measure,
  ms,
  ok,
  quantile,
  table,
  type Figures,
} from "./support/measure.js";

const ROWS = Number(process.env.BENCH_RECORDS ?? 1_000_000);
/** What the export requests ask for: `identity` (as ClickHouse's own output is sent), or gzip, br, zstd. */
const EXPORT_ENCODING = process.env.BENCH_EXPORT_ENCODING ?? "identity";
const LOAD_CHUNK = 100_000;
const PAGE = 100;
const SLUG = "bench_orders";
const WARMUP = 10;
const ITERATIONS = Number(process.env.BENCH_ITERATIONS ?? 100);
const CLIENTS = 4;
// Each concurrent workload runs 5 s in all, in 1 s slices taken in turn with the other.
const SLICES = 5;
const SLICE_MS = 1_000;
const SLICE_MAX_REQUESTS = 5_000;
const EXPORT_ROUNDS = Number(process.env.BENCH_EXPORT_ROUNDS ?? 3);
/** What reads the exports over HTTP (readInClient): curl, where the machine has it, or node. */
const EXPORT_CLIENT =
  process.env.BENCH_EXPORT_CLIENT ??
  (spawnSync("sh", ["-c", "command -v curl && command -v wc"]).status === 0 ? "curl" : "node");

// Rows are numbered 0 … N-1 in key order. The pages: after row NEAR_START (rows 1,001 … 1,100)
// and after row NEAR_END (rows N-200 … N-101).
const NEAR_START = 1_000;
const NEAR_END = ROWS - 2 * PAGE - 1;

const CATEGORIES = ["grocery", "electronics", "books", "garden", "toys", "sports", "beauty", "home"];
const KEY_WIDTH = String(ROWS - 1).length;
const orderId = (i: number) => `o${String(i).padStart(KEY_WIDTH, "0")}`;
const cents = (c: number) => `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`;
const EPOCH = Date.UTC(2024, 0, 1);

function orderRow(i: number): Record<string, unknown> {
  return {
    order_id: orderId(i),
    customer_id: 100_000 + ((i * 7_919) % 250_000),
    category: CATEGORIES[i % CATEGORIES.length],
    quantity: 1 + (i % 9),
    amount: cents(100 + ((i * 3_697) % 99_900)),
    sold_at: new Date(EPOCH + i * 30_000).toISOString(),
    coupon: i % 5 === 0 ? `SPRING${i % 100}` : null,
  };
}

// Started before the process holds the dataset (support/launcher.ts).
const launcher = startLauncher();
let stack: TestStack;
let buyer: TestAccount;
/** The buyer as services see it after authentication, for reads that skip HTTP and GraphQL. */
let buyerCaller: AuthenticatedCaller;
let sellerAccountId: string;
let target: DatasetRef;
let targetRow: Dataset;
let reader: RecordsReader;
let cursorAt: (row: number) => string;

/** "ClickHouse HTTP" on a server; "chDB" when the engine is embedded in this process. */
const RAW = process.env.CLICKHOUSE_URL?.startsWith("embedded:") ? "chDB" : "ClickHouse HTTP";

/**
 * The engine asked directly, as any client would: no app. A server over its HTTP interface with
 * no driver; the embedded engine through its own connection (raw bytes, no parsing).
 */
async function clickhouseHttp(query: Sql | string, format = "JSONEachRow"): Promise<Response> {
  const text = typeof query === "string" ? query : query.text;
  const { CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD } = stack.app.config;
  if (stack.app.stores.clickhouse.engine === "embedded") {
    const result = await stack.app.stores.clickhouse.client.exec({
      query: `${text} FORMAT ${format}`,
    });
    return new Response(Readable.toWeb(result.stream) as ReadableStream);
  }
  const url = new URL(CLICKHOUSE_URL);
  url.searchParams.set("user", CLICKHOUSE_USER);
  if (CLICKHOUSE_PASSWORD) url.searchParams.set("password", CLICKHOUSE_PASSWORD);
  return fetch(url, { method: "POST", body: `${text} FORMAT ${format}` });
}

/** The embedded engine's output read as it comes: chDB's own streaming query, on a connection of its own. */
async function chdbStream(statement: Sql): Promise<Response> {
  const [, text, format] = /^([\s\S]*)\sFORMAT\s+(\w+)\s*$/.exec(statement.text)!;
  const engine = clickHouseEngine(stack.app.config.CLICKHOUSE_URL);
  if (engine.kind !== "embedded") throw new Error("chdbStream: not the embedded engine");
  const { createChdbConnection } = createRequire(import.meta.url)(
    "chdb/connection",
  ) as typeof import("chdb/connection");
  const connection = createChdbConnection({ path: engine.path });
  const chunks = async function* () {
    try {
      for await (const chunk of connection.chdb.queryStream(text!, { format: format! })) yield chunk.raw();
    } finally {
      await connection.close();
    }
  };
  return new Response(Readable.toWeb(Readable.from(chunks())) as ReadableStream);
}

async function clickhouseVersion(): Promise<string> {
  const [row] = await stack.app.stores.clickhouse.query<{ v: string }>(sql`SELECT version() AS v`);
  return row?.v ?? "?";
}

async function activeParts(): Promise<number> {
  const [row] = await stack.app.stores.clickhouse.query<{ n: string }>(sql`
    SELECT count() AS n FROM system.parts
    WHERE database = ${stack.app.config.CLICKHOUSE_DATABASE} AND table = ${target.tableName} AND active`);
  return Number(row?.n ?? 0);
}

beforeAll(async () => {
  expect(Number.isInteger(ROWS) && ROWS >= 10 * NEAR_START, "BENCH_RECORDS must be ≥ 10,000").toBe(true);
  stack = await startStack();
  const publisher = await stack.signup("Bench Orders", "PUBLISHER");
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug: SLUG,
        title: "Bench orders",
        category: "bench",
        access: "METERED",
        pricePer100Records: 1,
        keyColumns: ["order_id"],
        columns: [
          { name: "order_id", type: "STRING", nullable: false },
          { name: "customer_id", type: "INT64", nullable: false },
          { name: "category", type: "STRING", nullable: false },
          { name: "quantity", type: "INT32", nullable: false },
          { name: "amount", type: "DECIMAL", precision: 12, scale: 2, nullable: false },
          { name: "sold_at", type: "DATETIME", nullable: false },
          { name: "coupon", type: "STRING", nullable: true },
        ],
      },
    },
    publisher.headers,
  );
  expect(created.errors).toBeUndefined();
  const { prisma, clickhouse } = stack.app.stores;
  const database = stack.app.config.CLICKHOUSE_DATABASE;
  const dataset = await prisma.dataset.findUniqueOrThrow({ where: { slug: SLUG } });
  target = ref(dataset);
  targetRow = dataset;
  sellerAccountId = dataset.accountId;

  // The load: writeRecords (encoding and validating each row, then one INSERT) per 100,000 rows.
  let loadMs = 0;
  for (let from = 0; from < ROWS; from += LOAD_CHUNK) {
    const rows = Array.from({ length: Math.min(LOAD_CHUNK, ROWS - from) }, (_, k) => orderRow(from + k));
    const start = performance.now();
    await writeRecords(clickhouse, database, target, rows, {
      version: 1,
      runId: "bench",
      chunkSize: LOAD_CHUNK,
    });
    loadMs += performance.now() - start;
  }
  await prisma.dataset.update({
    where: { id: target.id },
    data: { version: 1, rowCount: BigInt(ROWS), lastUpdatedAt: new Date() },
  });
  const published = await stack.graphql(
    PublishDatasetDocument,
    { id: created.data!.createDataset.id },
    publisher.headers,
  );
  expect(published.errors).toBeUndefined();
  // Background merges would get there within minutes; merging now makes runs comparable.
  const partsLoaded = await activeParts();
  const optimizeStart = performance.now();
  await clickhouse.command(sql`OPTIMIZE TABLE ${ident(database, target.tableName)} FINAL`);
  const optimizeMs = performance.now() - optimizeStart;

  // A buyer who never runs out of credits or requests: the ledger and the limiter stay in the path.
  buyer = await stack.signup("Bench Buyer");
  await stack.app.services.credits.ledger.topUp(buyer.rawAccountId, 100_000_000n, "bench");
  await stack.app.services.accounts.setPlan(system, buyer.rawAccountId, "ENTERPRISE", 1_000_000);
  buyerCaller = {
    kind: "user",
    accountId: buyer.rawAccountId,
    userId: decodeGlobalId(buyer.userId).id,
    role: "BUYER",
    scopes: ROLE_SCOPES.BUYER,
    limits: { perMinute: 1_000_000, perHour: null, perMonth: null },
  };

  reader = new RecordsReader(clickhouse, database, { maxLimit: stack.app.config.MAX_LIMIT });
  const terms = recordSortTerms(target.columns, null);
  cursorAt = (row) => encodeSortCursor(terms, [orderId(row)]);

  console.log(
    [
      `records bench: ${ROWS.toLocaleString("en")} records in one METERED dataset, pages of ${PAGE}`,
      `loaded in ${(loadMs / 1000).toFixed(1)} s: ${Math.round(ROWS / (loadMs / 1000)).toLocaleString("en")} rows/s ` +
        `(writeRecords × ${LOAD_CHUNK.toLocaleString("en")} rows: encode, validate, one INSERT each)`,
      `OPTIMIZE TABLE … FINAL: ${partsLoaded} parts → ${await activeParts()} in ${(optimizeMs / 1000).toFixed(1)} s`,
      `node ${process.version}, ${cpus().length} cores, ClickHouse ${await clickhouseVersion()}`,
    ].join("\n"),
  );
}, 600_000);

afterAll(async () => {
  await stack?.close();
  await launcher.close();
});

// ─── measuring ───────────────────────────────────────────────────────────────

const times = (value: number) => `${value.toFixed(2)}×`;

// ─── the three paths to one page ─────────────────────────────────────────────

const httpPage = async (after: number | null) => {
  const data = ok(
    await stack.graphql(
      RecordsDocument,
      { slug: SLUG, first: PAGE, after: after === null ? null : cursorAt(after) },
      buyer.headers,
    ),
  );
  return data.dataset!.records.edges.map((e) => e.node.key);
};

const servicePage = async (after: number | null) => {
  const page = await stack.app.services.reads.page(
    buyerCaller,
    targetRow,
    { first: PAGE, after: after === null ? null : cursorAt(after) },
    { requestId: "bench", meter: new CostMeter(), log: stack.app.log },
  );
  return page.items.map((item: RecordRow) => item.key);
};

const readerPage = async (after: number | null) => {
  const page = await reader.page(target, { first: PAGE, after: after === null ? null : cursorAt(after) });
  return page.items.map((item: RecordRow) => item.key);
};

// The page as one SELECT: what the issue asks to compare with. RecordsReader sends a two-phase
// query instead (keys first, then whole rows) plus a probe for hasPreviousPage.
const rawPageQuery = (after: number | null) => sql`
  SELECT _key, ${join(target.columns.map((c) => sql`${ident(c.name)}`))}
  FROM ${liveRows(stack.app.config.CLICKHOUSE_DATABASE, target.tableName)}
  WHERE ${LIVE} AND ${after === null ? sql`1` : sql`_key > ${orderId(after)}`}
  ORDER BY _key LIMIT ${PAGE}`;

const rawPage = async (after: number | null) => {
  const res = await clickhouseHttp(rawPageQuery(after));
  if (!res.ok) throw new Error(`ClickHouse answered ${res.status}: ${await res.text()}`);
  return parseJsonEachRow<{ _key: string }>(await res.text()).map((row) => row._key);
};

const keys = (from: number) => Array.from({ length: PAGE }, (_, k) => orderId(from + k));

it("sequential reads: the first page, a page near the start and one near the end, on four paths", async () => {
  for (const page of [httpPage, servicePage, readerPage, rawPage]) {
    expect(await page(null)).toEqual(keys(0));
    expect(await page(NEAR_START)).toEqual(keys(NEAR_START + 1));
    expect(await page(NEAR_END)).toEqual(keys(NEAR_END + 1));
  }

  const http = "HTTP+GraphQL+credits";
  const service = "ReadService";
  const app = "RecordsReader";
  const raw = RAW;
  const ledger = stack.app.services.credits.ledger;
  const f = await measure(
    {
      httpFirst: { label: "first page (no cursor)", path: http, run: () => httpPage(null) },
      httpStart: {
        label: `near the start: after row ${NEAR_START}`,
        path: http,
        run: () => httpPage(NEAR_START),
      },
      httpEnd: { label: `near the end: after row ${NEAR_END}`, path: http, run: () => httpPage(NEAR_END) },
      svcFirst: { label: "first page (no cursor)", path: service, run: () => servicePage(null) },
      svcStart: {
        label: `near the start: after row ${NEAR_START}`,
        path: service,
        run: () => servicePage(NEAR_START),
      },
      svcEnd: {
        label: `near the end: after row ${NEAR_END}`,
        path: service,
        run: () => servicePage(NEAR_END),
      },
      appFirst: { label: "first page (no cursor)", path: app, run: () => readerPage(null) },
      appStart: {
        label: `near the start: after row ${NEAR_START}`,
        path: app,
        run: () => readerPage(NEAR_START),
      },
      appEnd: { label: `near the end: after row ${NEAR_END}`, path: app, run: () => readerPage(NEAR_END) },
      rawFirst: { label: "first page (no cursor)", path: raw, run: () => rawPage(null) },
      rawStart: {
        label: `near the start: after row ${NEAR_START}`,
        path: raw,
        run: () => rawPage(NEAR_START),
      },
      rawEnd: { label: `near the end: after row ${NEAR_END}`, path: raw, run: () => rawPage(NEAR_END) },
      // Two steps every metered read takes besides the reader's queries, timed alone.
      ledger: {
        label: "ledger: reserve, then settle 1 credit",
        path: "PostgreSQL",
        run: async () => {
          const hold = await ledger.reserve(buyer.rawAccountId, 1n, {
            reference: "bench",
            datasetId: target.id,
          });
          await ledger.settle(hold, 1n, { sale: { sellerAccountId, records: PAGE } });
        },
      },
      usage: {
        label: "usage event: one INSERT",
        path: "ClickHouse",
        run: () =>
          recordUsage(stack.app.stores.clickhouse, {
            accountId: buyer.rawAccountId,
            datasetId: target.id,
            operation: "bench",
            records: PAGE,
            credits: 1,
            durationMs: 1,
            requestId: "bench",
          }),
      },
    },
    { warmup: WARMUP, iterations: ITERATIONS },
  );
  const ratio = (a: Figures, b: Figures) => `p50 ${times(a.p50 / b.p50)}, mean ${times(a.mean / b.mean)}`;
  console.log(
    [
      `sequential reads, interleaved: ${WARMUP} warm-up rounds, then ${ITERATIONS} timed of each (ms)`,
      table(
        ["read", "path", "p50", "p95", "mean", "n"],
        Object.values<Figures>(f).map((r) => [
          r.label,
          r.path,
          ms(r.p50),
          ms(r.p95),
          ms(r.mean),
          String(r.count),
        ]),
      ),
      "",
      "ratios                                   measured                    aim",
      `  HTTP near end / near start             ${ratio(f.httpEnd, f.httpStart).padEnd(28)}≤ 1.5× (deep page within 1.5× of the first)`,
      `  HTTP near end / first page             ${ratio(f.httpEnd, f.httpFirst).padEnd(28)}≤ 1.5×`,
      `  HTTP / raw engine, first page         ${ratio(f.httpFirst, f.rawFirst).padEnd(28)}≤ 3× (full path within 3× of raw)`,
      `  HTTP / raw engine, near start         ${ratio(f.httpStart, f.rawStart).padEnd(28)}≤ 3×`,
      `  HTTP / raw engine, near end           ${ratio(f.httpEnd, f.rawEnd).padEnd(28)}≤ 3×`,
      `  RecordsReader / ClickHouse, near start ${ratio(f.appStart, f.rawStart).padEnd(28)}(the app's SQL and driver)`,
      `  RecordsReader / ClickHouse, near end   ${ratio(f.appEnd, f.rawEnd).padEnd(28)}`,
      `  HTTP / ReadService, near end           ${ratio(f.httpEnd, f.svcEnd).padEnd(28)}(HTTP, GraphQL, authentication, rate limit)`,
      `  ReadService / RecordsReader, near end  ${ratio(f.svcEnd, f.appEnd).padEnd(28)}(access, credits, usage event)`,
      `  raw engine near end / near start       ${ratio(f.rawEnd, f.rawStart).padEnd(28)}≤ 1.3× on 26.7 (18.16 reads every row after the cursor)`,
    ]
      .map((line) => line.trimEnd())
      .join("\n"),
  );
});

it(`${CLIENTS} concurrent clients reading random pages`, async () => {
  const slice = (request: () => Promise<unknown>, samples: number[]) =>
    concurrentSlice(request, samples, { clients: CLIENTS, ms: SLICE_MS, maxRequests: SLICE_MAX_REQUESTS });

  const randomRow = () => Math.floor(Math.random() * (ROWS - PAGE));
  const workloads = [
    { label: "random pages", path: "HTTP+GraphQL+credits", request: () => httpPage(randomRow()) },
    { label: "random pages", path: RAW, request: () => rawPage(randomRow()) },
  ];
  const samples = workloads.map((): number[] => []);
  const seconds = workloads.map(() => 0);
  for (let i = 0; i < SLICES; i++) {
    for (let k = 0; k < workloads.length; k++) {
      const r = (i + k) % workloads.length;
      seconds[r]! += await slice(workloads[r]!.request, samples[r]!);
    }
  }
  const rows = workloads.map((w, r) => ({
    ...figures(w.label, w.path, samples[r]!),
    seconds: seconds[r]!,
    rps: samples[r]!.length / seconds[r]!,
  }));
  console.log(
    [
      `${CLIENTS} concurrent clients, ${SLICES} × ${SLICE_MS / 1000} s slices of each, interleaved (latency in ms)`,
      table(
        ["read", "path", "requests", "seconds", "req/s", "p50", "p95", "mean"],
        rows.map((r) => [
          r.label,
          r.path,
          String(r.count),
          r.seconds.toFixed(1),
          r.rps.toFixed(0),
          ms(r.p50),
          ms(r.p95),
          ms(r.mean),
        ]),
      ),
      `  HTTP / raw engine req/s  ${times(rows[0]!.rps / rows[1]!.rps)}`,
    ].join("\n"),
  );
});

// ─── export ──────────────────────────────────────────────────────────────────

// Once the load has grown the heap, RSS stays near its high-water mark whatever runs next, so an
// export's memory is also measured as the growth of V8's heap plus Buffers (external) over a
// baseline taken right after a full collection: an export holding the dataset would show hundreds
// of MiB there, a streaming one the garbage of a few batches.
setFlagsFromString("--expose-gc");
const collectGarbage = runInNewContext("gc") as () => void;
const liveMemory = () => {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};

interface Streamed {
  rows: number;
  bytes: number;
  seconds: number;
  /** Peak resident memory of this process while streaming. */
  peakRss: number;
  /** Peak heap + external above the baseline after a full collection. */
  memoryGrowth: number;
  /** CPU seconds the serving process (the API's, or this one) spent meanwhile. */
  cpu: number;
}

/** A process's user + system CPU seconds so far (Linux /proc; 100 ticks a second). */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Read {
  rows: number;
  bytes: number;
  seconds: number;
}

/** Runs a read, sampling this process's memory meanwhile and the serving process's CPU. */
async function sampled(read: () => Promise<Read>, server = process.pid): Promise<Streamed> {
  const cpu = cpuSeconds(server);
  collectGarbage();
  const baseline = liveMemory();
  let peakRss = process.memoryUsage.rss();
  let peakLive = baseline;
  const sample = () => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
    peakLive = Math.max(peakLive, liveMemory());
  };
  const sampler = setInterval(sample, 5);
  try {
    const result = await read();
    sample();
    return { ...result, peakRss, memoryGrowth: peakLive - baseline, cpu: cpuSeconds(server) - cpu };
  } finally {
    clearInterval(sampler);
  }
}

/** Reads a response body in this process to the end, counting lines. */
async function readHere(response: () => Promise<Response>): Promise<Read> {
  const start = performance.now();
  const res = await response();
  if (!res.ok || !res.body) throw new Error(`${res.status}: ${(await res.text()).slice(0, 300)}`);
  let rows = 0;
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
  }
  return { rows, bytes, seconds: (performance.now() - start) / 1000 };
}

// The same reading as readHere, by a client process of its own (timed inside it, from the request
// to the last byte), as a user's client would be: over HTTP a client in this process would share
// its thread with whatever serves the bytes here (the API, the embedded engine).
const CLIENT = `
const { url, init } = JSON.parse(process.env.BENCH_FETCH);
const start = performance.now();
const res = await fetch(url, init);
if (!res.ok) {
  console.log(JSON.stringify({ error: res.status + ": " + (await res.text()).slice(0, 300) }));
} else {
  let rows = 0;
  let bytes = 0;
  for await (const chunk of res.body) {
    bytes += chunk.byteLength;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
  }
  console.log(JSON.stringify({ rows, bytes, seconds: (performance.now() - start) / 1000 }));
}`;

/**
 * A client process reads the response to the end: curl into wc where the machine has them (a
 * reader in C, as clickhouse-client is; timed from its start to its exit), else Node's fetch
 * (BENCH_EXPORT_CLIENT=node; timed inside it). Started by the launcher (support/launcher.ts), not
 * forked from this process, which holds the embedded engine.
 */
async function readInClient(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string },
): Promise<Read> {
  if (EXPORT_CLIENT === "curl") {
    const args = ["-sSf", "-X", init.method ?? "GET"];
    for (const [name, value] of Object.entries(init.headers ?? {})) args.push("-H", `${name}: ${value}`);
    if (init.body !== undefined) args.push("--data-binary", init.body);
    const { stdout, seconds } = await launcher.run("bash", [
      "-c",
      'set -o pipefail; curl "$@" | wc -lc',
      "bash",
      ...args,
      url,
    ]);
    const [rows, bytes] = stdout.trim().split(/\s+/).map(Number);
    return { rows: rows!, bytes: bytes!, seconds };
  }
  const { stdout } = await launcher.run(process.execPath, ["--input-type=module", "-e", CLIENT], {
    BENCH_FETCH: JSON.stringify({ url, init }),
  });
  const result = JSON.parse(stdout) as Read & { error?: string };
  if (result.error) throw new Error(result.error);
  return result;
}

/** ClickHouse's output of a statement (its FORMAT at the end): a client process on a server. */
function readEngine(text: string): Promise<Read> {
  if (stack.app.stores.clickhouse.engine === "embedded") throw new Error("readEngine: a server only");
  const { CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD } = stack.app.config;
  const url = new URL(CLICKHOUSE_URL);
  url.searchParams.set("user", CLICKHOUSE_USER);
  if (CLICKHOUSE_PASSWORD) url.searchParams.set("password", CLICKHOUSE_PASSWORD);
  return readInClient(url.toString(), { method: "POST", body: text });
}

it("export of the whole dataset in each format against ClickHouse's own output", async () => {
  // On a server the API runs as a process of its own, as deployed: in this one it would share a
  // thread with the client reading the export (BENCH_EXPORT_API=here keeps it here). The embedded
  // engine lives in the API's process, so there the API is this process.
  const own = stack.app.stores.clickhouse.engine === "server" && process.env.BENCH_EXPORT_API !== "here";
  // BENCH_API_NODE_ARGS: Node flags for that process (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof);
  // by default those it is deployed with (Dockerfile, `npm start`: --expose-gc, which the export's
  // relay collects garbage with, relay-collection.ts).
  const nodeArgs = (process.env.BENCH_API_NODE_ARGS ?? "--expose-gc").split(" ").filter(Boolean);
  const api = own ? await spawnApi(stack, { LOG_LEVEL: "warn" }, nodeArgs) : null;
  onTestFinished(async () => {
    if (!api) return;
    const exited = once(api.child, "exit");
    api.child.kill("SIGTERM");
    await exited;
  });
  const apiUrl = api?.url ?? stack.url;
  const exportUrl = `${apiUrl}/api/v1/data/export?dataset=${SLUG}&format=ndjson`;
  // Without the dataset parameter an existing route refuses the request (400); a missing one is 404.
  const probe = await fetch(`${apiUrl}/api/v1/data/export`, { headers: buyer.headers });
  await probe.body?.cancel();
  if (probe.status === 404) {
    // A build without src/http/data-routes.ts: say so rather than fail the other measurements.
    console.log("export: not measured: GET /api/v1/data/export is not registered in this build");
    return;
  }
  // The same rows and order the export sends (records.reader.ts stream): FINAL, live, by key.
  const rawExport = sql`
    SELECT _key, ${join(target.columns.map((c) => sql`${ident(c.name)}`))}
    FROM ${liveRows(stack.app.config.CLICKHOUSE_DATABASE, target.tableName)}
    WHERE ${LIVE} ORDER BY _key`;
  // Each format against ClickHouse's own output of the same rows in that format. Parquet only
  // where the server writes it (18.16 does not).
  const parquet = !(await clickhouseVersion()).startsWith("18.");
  const formats = [
    ["ndjson", "JSONEachRow"],
    ["csv", "CSVWithNames"],
    ["tsv", "TabSeparatedWithNames"],
    ...(parquet ? [["parquet", "Parquet"]] : []),
  ];
  const ownFormat: Record<string, Sql> = {
    JSONEachRow: sql`JSONEachRow`,
    CSVWithNames: sql`CSVWithNames`,
    TabSeparatedWithNames: sql`TabSeparatedWithNames`,
    Parquet: sql`Parquet`,
  };
  // Streamed, each chunk is the format's output on its own (ClickHouse.output): the formats
  // without a header or footer.
  const streamedFormat: Record<string, Sql> = {
    JSONEachRow: sql`JSONEachRow`,
    CSVWithNames: sql`CSV`,
    TabSeparatedWithNames: sql`TabSeparated`,
  };
  // On a server every reader is a client process of its own (readInClient); the embedded engine's
  // own output is read here, where it runs, whole (exec) or as it comes (a streaming query, which
  // the export uses): its baseline is the faster of the two.
  const embedded = stack.app.stores.clickhouse.engine === "embedded";
  const engineOutput = (statement: Sql, whole = false): Promise<Read> => {
    if (!embedded) return readEngine(statement.text);
    if (!whole) return readHere(() => chdbStream(statement));
    const [text, format] = statement.text.split(/ FORMAT (?=\w+\s*$)/);
    return readHere(() => clickhouseHttp(text!, format!.trim()));
  };
  const exportStatement = async (format: string) => {
    const statement = await reader.exportStatement(
      target,
      // As the export asks: a text format's statement has no LIMIT (its bytes are cut at the count).
      { filter: null, after: null, limit: format === "parquet" ? ROWS : null },
      format as ExportFormat,
    );
    if (!statement) throw new Error(`${format}: this dataset exports on the Node path`);
    return statement;
  };
  const paths = Object.fromEntries(
    formats.flatMap(([format, own]) => [
      [
        `raw ${format}`,
        {
          path: `${RAW}, ${own}${embedded ? " (whole)" : ""}`,
          run: () => sampled(() => engineOutput(sql`${rawExport} FORMAT ${ownFormat[own!]!}`, true)),
        },
      ],
      ...(embedded && streamedFormat[own!]
        ? [
            [
              `raw stream ${format}`,
              {
                path: `${RAW} streamed, ${streamedFormat[own!]!.text}`,
                run: () => sampled(() => engineOutput(sql`${rawExport} FORMAT ${streamedFormat[own!]!}`)),
              },
            ],
          ]
        : []),
      // Datahus's own export statement asked of the engine directly: what the SQL costs, apart
      // from the relay through the API.
      [
        `query ${format}`,
        {
          path: `${RAW}, Datahus's ${format} statement`,
          run: () => sampled(async () => engineOutput(await exportStatement(format!), true)),
        },
      ],
      [
        format,
        {
          path: `GET /api/v1/data/export, ${format}${api ? " (API process)" : ""}`,
          run: () =>
            // Uncompressed, like ClickHouse's own output beside it (fetch asks for gzip by default,
            // and compressing 150 MB costs the API seconds of CPU a loopback transfer does not).
            sampled(
              () =>
                readInClient(exportUrl.replace("ndjson", format!), {
                  headers: { ...buyer.headers, "accept-encoding": EXPORT_ENCODING },
                }),
              api?.child.pid,
            ),
        },
      ],
    ]),
  ) as Record<string, { path: string; run: () => Promise<Streamed> }>;
  const results: { path: string; round: number; s: Streamed }[] = [];
  for (let round = 1; round <= EXPORT_ROUNDS; round++) {
    for (const { path, run } of Object.values(paths)) {
      const s = await run();
      // Lines: one per row, plus the header of …WithNames and of the API's CSV and TSV (Datahus's
      // statements write the rows only; the API adds the header). Parquet is binary: its rows are the dataset's (its
      // line feeds counted as rows had made its rate meaningless).
      if (/arquet/.test(path)) s.rows = ROWS;
      const header = /WithNames|export, (csv|tsv)/.test(path) ? 1 : 0;
      expect(s.rows - header, path).toBe(ROWS);
      results.push({ path, round, s });
    }
  }
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);
  const rate = (s: Streamed) => s.rows / s.seconds;
  const best = (path: string) => Math.max(...results.filter((r) => r.path === path).map((r) => rate(r.s)));
  // Each round's export against the same round's baseline: steadier than the best of each
  // when the machine's load changes between rounds.
  const inRound = (path: string, round: number) =>
    rate(results.find((r) => r.path === path && r.round === round)!.s);
  const medianRatio = (format: string) => {
    const ratios = Array.from({ length: EXPORT_ROUNDS }, (_, i) => {
      const own = [`raw ${format}`, `raw stream ${format}`].filter((p) => paths[p]);
      return (
        inRound(paths[format]!.path, i + 1) / Math.max(...own.map((p) => inRound(paths[p]!.path, i + 1)))
      );
    });
    return quantile(
      ratios.sort((a, b) => a - b),
      0.5,
    );
  };
  const baseline = (format: string) =>
    Math.max(
      ...[`raw ${format}`, `raw stream ${format}`].filter((p) => paths[p]).map((p) => best(paths[p]!.path)),
    );
  console.log(
    [
      `export of all ${ROWS.toLocaleString("en")} records, ${EXPORT_ROUNDS} rounds (memory: the bench's process, which holds the embedded engine and its API; clients: ${EXPORT_CLIENT} processes)`,
      table(
        [
          "path",
          "round",
          "seconds",
          "rows/s",
          "MiB",
          "MiB/s",
          "server CPU s",
          "peak RSS MiB",
          "heap+external growth MiB",
        ],
        results.map(({ path, round, s }) => [
          path,
          String(round),
          s.seconds.toFixed(2),
          Math.round(rate(s)).toLocaleString("en"),
          mib(s.bytes),
          (s.bytes / 2 ** 20 / s.seconds).toFixed(1),
          // On a server the engine's own paths are served by ClickHouse, not measured here.
          embedded || /export/.test(path) ? s.cpu.toFixed(2) : "",
          mib(s.peakRss),
          mib(s.memoryGrowth),
        ]),
      ),
      ...formats.map(
        ([format]) =>
          `  export ${format} / ClickHouse's own rows/s (best round of each)  ` +
          `${times(best(paths[format!]!.path) / baseline(format!))}   aim: ≥ 0.8×` +
          `   (its statement alone ${times(best(paths[`query ${format}`]!.path) / baseline(format!))},` +
          ` the relay ${times(best(paths[format!]!.path) / best(paths[`query ${format}`]!.path))} of it;` +
          ` median of the rounds' own ratios ${times(medianRatio(format!))})`,
      ),
    ].join("\n"),
  );
});
