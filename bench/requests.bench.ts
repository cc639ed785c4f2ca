// Requests at engine speed (issue 12): Datahus beside PostGraphile 5 and the raw engine, on the
// same rows, measured in one run with the contenders taking turns in short slices at each
// concurrency (1, 8, 32), so that a noisy machine weighs on all of them alike.
//
// - Records: one 100-record page at a random cursor of BENCH_REQUEST_ROWS rows (7 columns).
//   Datahus metered (a buyer, METERED dataset: hold, read, settle) and free (the publisher reading
//   its own dataset: the same pages without the ledger); PostGraphile 5 (amber preset) over a
//   PostgreSQL table holding the same rows; the engine asked directly (ClickHouse HTTP on a server;
//   on the embedded engine, chDB in this process, since it has no port).
// - Catalogue: `datasets(first: 100, after:)` at a random cursor over BENCH_REQUEST_DATASETS
//   datasets, Datahus against PostGraphile over a copy of the same datasets table.
// - `me` with an API key at concurrency 1 (authentication, rate limiter, the account's balance).
//
// autocannon runs in a process of its own (bench/support/request-runner.mjs). Prints req/s, p50
// and p99 per contender and the ratios next to the issue's aims; asserts only that every answer
// was a success. See bench/README.md.
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join as join_ } from "node:path";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { promisify } from "node:util";
import { afterAll, beforeAll, expect, it } from "vitest";
import { LIVE, liveRows } from "../src/catalog/dataset-table.js";
import { ident, join, sql, type Sql } from "../src/db/sql.js";
import { system } from "../src/identity/caller.js";
import { encodeSortCursor, recordSortTerms } from "../src/records/order.js";
import { ref } from "../src/records/read.service.js";
import { writeRecords, type DatasetRef } from "../src/records/records.writer.js";
import { CreateDatasetDocument, PublishDatasetDocument } from "../test/generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../test/support/stack.js";
import { concurrentSlice, ms, table } from "./support/measure.js";

const ROWS = Number(process.env.BENCH_REQUEST_ROWS ?? 1_000_000);
const DATASETS = Number(process.env.BENCH_REQUEST_DATASETS ?? 2_000);
const SLICE_SECONDS = Number(process.env.BENCH_REQUEST_SLICE_SECONDS ?? 3);
const ROUNDS = Number(process.env.BENCH_REQUEST_ROUNDS ?? 2);
const CONCURRENCY = [1, 8, 32];
const PAGE = 100;
const CURSORS = 500;
const SLUG = "bench_requests";
const RUNNER = new URL("./support/request-runner.mjs", import.meta.url).pathname;
const CATEGORIES = ["grocery", "electronics", "books", "garden", "toys", "sports", "beauty", "home"];
const KEY_WIDTH = String(ROWS - 1).length;
const orderId = (i: number) => `o${String(i).padStart(KEY_WIDTH, "0")}`;
const EPOCH = Date.UTC(2024, 0, 1);
const embedded = process.env.CLICKHOUSE_URL?.startsWith("embedded:") ?? false;

function orderRow(i: number): Record<string, unknown> {
  const c = 100 + ((i * 3_697) % 99_900);
  return {
    order_id: orderId(i),
    customer_id: 100_000 + ((i * 7_919) % 250_000),
    category: CATEGORIES[i % CATEGORIES.length],
    quantity: 1 + (i % 9),
    amount: `${Math.floor(c / 100)}.${String(c % 100).padStart(2, "0")}`,
    sold_at: new Date(EPOCH + i * 30_000).toISOString(),
    coupon: i % 5 === 0 ? `SPRING${i % 100}` : null,
  };
}

let stack: TestStack;
let buyer: TestAccount;
let publisher: TestAccount;
let target: DatasetRef;
let postgraphile: { server: Server; url: string; release: () => Promise<void> };
const randomRows = Array.from({ length: CURSORS }, () => Math.floor(Math.random() * (ROWS - PAGE)));

interface Result {
  requests: number;
  requestsPerSecond: number;
  p50: number | null;
  p99: number | null;
  non2xx: number;
  errors: number;
  firstError: string | null;
}

async function autocannon(spec: {
  url: string;
  method: "GET" | "POST";
  headers?: Record<string, string>;
  bodies?: string[];
  paths?: string[];
  connections: number;
}): Promise<Result> {
  // The spec (hundreds of bodies) goes in a file: too long for a command line.
  const file = join_(tmpdir(), `datahus-requests-${process.pid}.json`);
  await writeFile(file, JSON.stringify({ ...spec, seconds: SLICE_SECONDS }));
  const { stdout } = await promisify(execFile)(process.execPath, [RUNNER, file], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as Result;
}

const graphqlBodies = (query: string, variables: Record<string, unknown>[]) =>
  variables.map((v) => JSON.stringify({ query, variables: v }));

// ─── Set-up ─────────────────────────────────────────────────────────────────────────────────

async function loadRecords(): Promise<void> {
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug: SLUG,
        title: "Bench requests",
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
  const row = await prisma.dataset.findUniqueOrThrow({ where: { slug: SLUG } });
  target = ref(row);
  for (let from = 0; from < ROWS; from += 100_000) {
    const rows = Array.from({ length: Math.min(100_000, ROWS - from) }, (_, k) => orderRow(from + k));
    await writeRecords(clickhouse, database, target, rows, {
      version: 1,
      runId: "bench",
      chunkSize: 100_000,
    });
  }
  await prisma.dataset.update({ where: { id: row.id }, data: { version: 1, rowCount: BigInt(ROWS) } });
  await stack.graphql(PublishDatasetDocument, { id: created.data!.createDataset.id }, publisher.headers);
  await clickhouse.command(sql`OPTIMIZE TABLE ${ident(database, target.tableName)} FINAL`);

  // The same rows in PostgreSQL, for PostGraphile, computed by the same formulas.
  const categories = sql`ARRAY[${join(CATEGORIES.map((c) => sql`${c}`))}]`.text;
  await prisma.$executeRawUnsafe(`CREATE SCHEMA bench`);
  await prisma.$executeRawUnsafe(`
    CREATE TABLE bench.records (
      order_id text PRIMARY KEY, customer_id bigint NOT NULL, category text NOT NULL,
      quantity int NOT NULL, amount numeric(12, 2) NOT NULL, sold_at timestamptz NOT NULL, coupon text)`);
  await prisma.$executeRawUnsafe(`
    INSERT INTO bench.records
    SELECT 'o' || lpad(i::text, ${KEY_WIDTH}, '0'), 100000 + (i * 7919) % 250000,
      (${categories})[i % 8 + 1], 1 + i % 9, (100 + (i * 3697) % 99900) / 100.0,
      to_timestamp(${EPOCH / 1000} + i * 30), CASE WHEN i % 5 = 0 THEN 'SPRING' || (i % 100) END
    FROM generate_series(0::bigint, ${ROWS - 1}) AS i`);
}

async function loadCatalogue(): Promise<void> {
  const { prisma } = stack.app.stores;
  const columns = [{ name: "id", type: "INT64", nullable: false }];
  await prisma.dataset.createMany({
    data: Array.from({ length: DATASETS }, (_, i) => ({
      accountId: publisher.rawAccountId,
      slug: `catalogue_${String(i).padStart(5, "0")}`,
      title: `Catalogue dataset ${i}`,
      description: `Dataset number ${i} of the request bench`,
      category: CATEGORIES[i % CATEGORIES.length]!,
      tags: ["bench", CATEGORIES[i % CATEGORIES.length]!],
      columns,
      keyColumns: ["id"],
      access: "OPEN",
      status: "PUBLISHED",
      tableName: `bench_catalogue_${i}`,
    })),
  });
  await prisma.$executeRawUnsafe(`CREATE TABLE bench.datasets AS SELECT * FROM public.datasets`);
  await prisma.$executeRawUnsafe(`ALTER TABLE bench.datasets ADD PRIMARY KEY (id)`);
  await prisma.$executeRawUnsafe(`ANALYZE bench.records`);
  await prisma.$executeRawUnsafe(`ANALYZE bench.datasets`);
}

async function startPostGraphile(): Promise<void> {
  const { postgraphile: make } = await import("postgraphile");
  const { PostGraphileAmberPreset } = await import("postgraphile/presets/amber");
  const { makePgService } = await import("postgraphile/adaptors/pg");
  const { grafserv } = await import("postgraphile/grafserv/node");
  const pgl = make({
    extends: [PostGraphileAmberPreset],
    pgServices: [makePgService({ connectionString: stack.app.config.DATABASE_URL, schemas: ["bench"] })],
    grafserv: { graphqlPath: "/graphql", graphiql: false },
  });
  const serv = pgl.createServ(grafserv);
  const server = createServer();
  await serv.addTo(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  postgraphile = {
    server,
    url: `http://127.0.0.1:${port}/graphql`,
    release: async () => {
      await new Promise((resolve) => server.close(resolve));
      await pgl.release();
    },
  };
}

async function postGraphileQuery<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(postgraphile.url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: unknown };
  if (!body.data || body.errors) throw new Error(`PostGraphile: ${JSON.stringify(body.errors)}`);
  return body.data;
}

beforeAll(async () => {
  stack = await startStack({ LOG_LEVEL: "warn" });
  publisher = await stack.signup("Bench Publisher", "PUBLISHER");
  buyer = await stack.signup("Bench Buyer");
  await stack.app.services.credits.ledger.topUp(buyer.rawAccountId, 1_000_000_000n, "bench");
  for (const account of [buyer, publisher]) {
    await stack.app.services.accounts.setPlan(system, account.rawAccountId, "ENTERPRISE", 1_000_000);
  }
  await loadRecords();
  await loadCatalogue();
  await startPostGraphile();
  console.log(
    `requests bench: ${ROWS.toLocaleString("en")} records, ${DATASETS.toLocaleString("en")} datasets; ` +
      `${SLICE_SECONDS} s slices × ${ROUNDS} rounds per contender and concurrency; node ${process.version}`,
  );
}, 900_000);

afterAll(async () => {
  await postgraphile?.release();
  await stack?.close();
});

// ─── The contenders ─────────────────────────────────────────────────────────────────────────

const RECORDS_QUERY = `query ($slug: String!, $after: String) {
  dataset(slug: $slug) { records(first: ${PAGE}, after: $after) { edges { node { key values } } } } }`;
const PGL_RECORDS_QUERY = `query ($after: Cursor) {
  allRecords(first: ${PAGE}, after: $after) { nodes { orderId customerId category quantity amount soldAt coupon } } }`;
const CATALOGUE_QUERY = `query ($after: String) {
  datasets(first: 100, after: $after) { edges { cursor node { id slug title category } } } }`;
const PGL_CATALOGUE_QUERY = `query ($after: Cursor) {
  allDatasets(first: 100, after: $after) { edges { cursor node { id slug title category } } } }`;

const rawPageQuery = (after: number): Sql => sql`
  SELECT _key, ${join(target.columns.map((c) => sql`${ident(c.name)}`))}
  FROM ${liveRows(stack.app.config.CLICKHOUSE_DATABASE, target.tableName)}
  WHERE ${LIVE} AND _key > ${orderId(after)}
  ORDER BY _key LIMIT ${PAGE}`;

type Contender = (connections: number) => Promise<Result>;

async function contenders(): Promise<Record<string, Contender>> {
  const terms = recordSortTerms(target.columns, null);
  const datahusRecords = graphqlBodies(
    RECORDS_QUERY,
    randomRows.map((i) => ({ slug: SLUG, after: encodeSortCursor(terms, [orderId(i)]) })),
  );
  // PostGraphile's cursors are its own: taken from the rows at the same positions.
  const pglCursors: string[] = [];
  for (const i of randomRows.slice(0, 100)) {
    const data = await postGraphileQuery<{ allRecords: { edges: { cursor: string }[] } }>(
      `query ($o: Int!) { allRecords(first: 1, offset: $o) { edges { cursor } } }`,
      { o: i },
    );
    pglCursors.push(data.allRecords.edges[0]!.cursor);
  }
  const catalogueCursors: string[] = [];
  const pglCatalogueCursors: string[] = [];
  let after: string | null = null;
  let pglAfter: string | null = null;
  for (let page = 0; page < DATASETS / 100 - 1; page++) {
    const response = await fetch(`${stack.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", ...buyer.headers },
      body: JSON.stringify({ query: CATALOGUE_QUERY, variables: { after } }),
    });
    const body = (await response.json()) as { data: { datasets: { edges: { cursor: string }[] } } };
    catalogueCursors.push(...body.data.datasets.edges.map((e) => e.cursor));
    after = body.data.datasets.edges.at(-1)!.cursor;
    const pgl: { allDatasets: { edges: { cursor: string }[] } } = await postGraphileQuery(
      PGL_CATALOGUE_QUERY,
      {
        after: pglAfter,
      },
    );
    pglCatalogueCursors.push(...pgl.allDatasets.edges.map((e) => e.cursor));
    pglAfter = pgl.allDatasets.edges.at(-1)!.cursor;
  }
  const post = (headers: Record<string, string>, bodies: string[]) => (connections: number) =>
    autocannon({
      url: `${stack.url}/graphql`,
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      bodies,
      connections,
    });
  const pglPost = (bodies: string[]) => (connections: number) =>
    autocannon({
      url: postgraphile.url,
      method: "POST",
      headers: { "content-type": "application/json" },
      bodies,
      connections,
    });
  return {
    "Datahus metered": post(buyer.headers, datahusRecords),
    "Datahus free": post(publisher.headers, datahusRecords),
    "PostGraphile 5": pglPost(
      graphqlBodies(
        PGL_RECORDS_QUERY,
        pglCursors.map((after) => ({ after })),
      ),
    ),
    [embedded ? "chDB (in process)" : "ClickHouse HTTP"]: embedded ? rawInProcess : rawOverHttp(),
    "catalogue Datahus": post(
      buyer.headers,
      graphqlBodies(
        CATALOGUE_QUERY,
        catalogueCursors.map((after) => ({ after })),
      ),
    ),
    "catalogue PostGraphile": pglPost(
      graphqlBodies(
        PGL_CATALOGUE_QUERY,
        pglCatalogueCursors.map((after) => ({ after })),
      ),
    ),
  };
}

/** The engine's HTTP interface, no driver: the page as one SELECT, as any client would send it. */
function rawOverHttp(): Contender {
  const { CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD } = stack.app.config;
  const base = new URL(CLICKHOUSE_URL);
  const paths = randomRows.map((i) => {
    const url = new URL(base);
    url.searchParams.set("user", CLICKHOUSE_USER);
    if (CLICKHOUSE_PASSWORD) url.searchParams.set("password", CLICKHOUSE_PASSWORD);
    url.searchParams.set("query", `${rawPageQuery(i).text} FORMAT JSONEachRow`);
    return `${url.pathname}${url.search}`;
  });
  return (connections) => autocannon({ url: base.origin, method: "GET", paths, connections });
}

/** The embedded engine has no port: the same SELECT through its connection, in this process. */
async function rawInProcess(connections: number): Promise<Result> {
  const samples: number[] = [];
  const client = stack.app.stores.clickhouse.client;
  const seconds = await concurrentSlice(
    async () => {
      const query = rawPageQuery(randomRows[Math.floor(Math.random() * randomRows.length)]!);
      const result = await client.exec({ query: `${query.text} FORMAT JSONEachRow` });
      for await (const _chunk of result.stream) void _chunk;
    },
    samples,
    { clients: connections, ms: SLICE_SECONDS * 1000, maxRequests: 1_000_000 },
  );
  samples.sort((a, b) => a - b);
  const q = (p: number) => samples[Math.min(samples.length - 1, Math.floor(p * samples.length))] ?? null;
  return {
    requests: samples.length,
    requestsPerSecond: samples.length / seconds,
    p50: q(0.5),
    p99: q(0.99),
    non2xx: 0,
    errors: 0,
    firstError: null,
  };
}

// ─── The run ────────────────────────────────────────────────────────────────────────────────

it("records pages, the catalogue and `me`: Datahus beside PostGraphile 5 and the raw engine", async () => {
  const all = await contenders();
  const totals = new Map<string, { requests: number; seconds: number; p50: number[]; p99: number[] }>();
  for (const connections of CONCURRENCY) {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [name, run] of Object.entries(all)) {
        const result = await run(connections);
        expect(result.non2xx, `${name} c=${connections}: ${result.firstError}`).toBe(0);
        expect(result.errors, `${name} c=${connections}`).toBe(0);
        const key = `${name}|${connections}`;
        const total = totals.get(key) ?? { requests: 0, seconds: 0, p50: [], p99: [] };
        total.requests += result.requests;
        total.seconds += result.requests / result.requestsPerSecond || SLICE_SECONDS;
        if (result.p50 !== null) total.p50.push(result.p50);
        if (result.p99 !== null) total.p99.push(result.p99);
        totals.set(key, total);
      }
    }
  }
  const me = await autocannon({
    url: `${stack.url}/graphql`,
    method: "POST",
    headers: { "content-type": "application/json", ...buyer.headers },
    bodies: [JSON.stringify({ query: "{ me { scopes account { creditBalance } } }" })],
    connections: 1,
  });
  expect(me.non2xx, String(me.firstError)).toBe(0);

  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? NaN;
  const figure = (name: string, c: number) => {
    const t = totals.get(`${name}|${c}`)!;
    return { rps: t.requests / t.seconds, p50: median(t.p50), p99: median(t.p99) };
  };
  const raw = embedded ? "chDB (in process)" : "ClickHouse HTTP";
  const rows: string[][] = [];
  for (const name of Object.keys(all)) {
    rows.push([
      name,
      ...CONCURRENCY.map((c) => {
        const f = figure(name, c);
        return `${f.rps.toFixed(0)} (${ms(f.p50)} / ${ms(f.p99)})`;
      }),
    ]);
  }
  const ratio = (a: string, b: string, c: number) => (figure(a, c).rps / figure(b, c).rps).toFixed(2);
  const ratios: string[][] = [
    [
      "catalogue: Datahus / PostGraphile req/s",
      ...CONCURRENCY.map((c) => ratio("catalogue Datahus", "catalogue PostGraphile", c)),
      "≥ 0.70",
    ],
    [
      "records: Datahus metered / raw engine req/s",
      ...CONCURRENCY.map((c) => ratio("Datahus metered", raw, c)),
      "≥ 0.90",
    ],
    [
      "records: Datahus metered / PostGraphile req/s",
      ...CONCURRENCY.map((c) => ratio("Datahus metered", "PostGraphile 5", c)),
      "—",
    ],
    [
      "records: metered / free latency p50",
      ...CONCURRENCY.map((c) =>
        (figure("Datahus metered", c).p50 / figure("Datahus free", c).p50).toFixed(2),
      ),
      "≤ 1.15",
    ],
  ];
  console.log(
    [
      `req/s (p50 / p99 ms) at concurrency ${CONCURRENCY.join(" / ")}, ${ROUNDS} × ${SLICE_SECONDS} s slices each, in turn:`,
      table(["contender", ...CONCURRENCY.map((c) => `c=${c}`)], rows),
      "",
      table(["ratio", ...CONCURRENCY.map((c) => `c=${c}`), "aim"], ratios),
      "",
      `me with an API key, c=1: p50 ${ms(me.p50 ?? NaN)} ms, p99 ${ms(me.p99 ?? NaN)} ms, ${me.requestsPerSecond.toFixed(0)} req/s (aim: p50 ≤ 2 ms)`,
    ].join("\n"),
  );
});
