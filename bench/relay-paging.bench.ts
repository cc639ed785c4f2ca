// Checks the claim in README.md and src/db/keyset.ts that keyset paging makes "page 10,000 cost
// what page 1 costs": the Relay `datasets` connection is read at its first page, near its end and
// from its middle, through the whole HTTP + GraphQL path, next to the same reads through Prisma
// (keyset range, OFFSET, and the "anything beyond the cursor?" probe pageById adds). Prints
// figures; asserts only that each read returns the rows it should. Client and server share one
// process on whatever machine runs it: compare the ratios of one run, not milliseconds across runs.
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { afterAll, beforeAll, expect, it } from "vitest";
import { encodeCursor } from "../src/pagination.js";
import { DatasetsBackwardDocument, DatasetsForwardDocument } from "../test/generated/graphql.js";
import { startStack, type TestStack } from "../test/support/stack.js";
import { concurrentSlice, figures, measure, ms, ok, table, type Figures } from "./support/measure.js";
import { uuidv7 } from "../src/db/uuid.js";

const DATASETS = Number(process.env.BENCH_DATASETS ?? 100_000);
const PAGE = 100;
// Rows per createMany. Prisma splits an insert of more than 32,766 bind values (some 3,000 rows
// of this shape) into several statements in a transaction, which adapter-pg 7.10 runs pipelined
// on one connection and pg then warns about (prisma/orm#29646); 2,500 rows is one statement.
const SEED_BATCH = 2_500;
const WARMUP = 20;
const ITERATIONS = 200;
const CLIENTS = 4;
// Each concurrent workload runs 5 s in all, as 5 slices of 1 s taken in turn with the others, so
// that load from elsewhere on the machine falls on every workload alike.
const SLICES = 5;
const SLICE_MS = 1_000;
const SLICE_MAX_REQUESTS = 10_000;

// Rows are numbered 0 … N-1 in creation (= id) order. The cursors the reads start from:
const DEEP = DATASETS - 2 * PAGE - 1; // first: 100, after it → rows N-200 … N-101
const NEAR_START = 2 * PAGE; // last: 100, before it → rows 100 … 199
const MIDDLE = Math.floor(DATASETS / 2); // last: 100, before it → the 100 rows before the middle

let stack: TestStack;
/** Dataset ids in creation order: ids[i] belongs to slug(i). */
let ids: string[] = [];

// One millisecond per row (uuidv7 from src/db/uuid.ts) keeps the ids strictly increasing in creation order.

const slug = (i: number) => `ds_${String(i).padStart(String(DATASETS).length, "0")}`;
const slugs = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => slug(from + k));
const cursorAt = (row: number) => encodeCursor([ids[row]!]);

beforeAll(async () => {
  expect(Number.isInteger(DATASETS) && DATASETS >= 10 * PAGE, "BENCH_DATASETS must be ≥ 1000").toBe(true);
  // Anonymous callers are limited per IP (60 a minute by default). A limit the bench cannot reach
  // keeps the limiter's Redis check in the measured path without refusing requests.
  stack = await startStack({ ANONYMOUS_RATE_LIMIT_PER_MINUTE: "1000000" });
  const prisma = stack.app.stores.prisma;
  const plan = await prisma.plan.findUniqueOrThrow({ where: { code: "FREE" } });
  const publisher = await prisma.account.create({
    data: { name: "Bench Data", slug: "bench", planId: plan.id },
  });

  const seedStart = performance.now();
  const firstMs = Date.now() - DATASETS;
  ids = Array.from({ length: DATASETS }, (_, i) => uuidv7(firstMs + i));
  for (let from = 0; from < DATASETS; from += SEED_BATCH) {
    await prisma.dataset.createMany({
      data: ids.slice(from, from + SEED_BATCH).map((id, k) => ({
        id,
        accountId: publisher.id,
        slug: slug(from + k),
        title: `Dataset ${from + k}`,
        category: "bench",
        columns: [{ name: "id", type: "String", nullable: false }],
        keyColumns: ["id"],
        status: "PUBLISHED" as const,
        tableName: `bench_${from + k}`,
      })),
    });
  }
  // Fresh statistics, as autovacuum would give a table this size in production.
  await prisma.$executeRaw`ANALYZE datasets`;
  const seedMs = performance.now() - seedStart;

  // Id order must be creation (slug) order, or the pages below are not the rows expected.
  const [check] = await prisma.$queryRaw<{ rows: number; misordered: number }[]>`
    SELECT count(*)::int AS rows, count(*) FILTER (WHERE by_id <> by_slug)::int AS misordered
    FROM (SELECT row_number() OVER (ORDER BY id) AS by_id, row_number() OVER (ORDER BY slug) AS by_slug
          FROM datasets) AS t`;
  expect(check).toEqual({ rows: DATASETS, misordered: 0 });

  const [pg] = await prisma.$queryRaw<{ version: string }[]>`SELECT version()`;
  console.log(
    [
      `relay paging bench: ${DATASETS.toLocaleString("en")} published datasets, pages of ${PAGE}`,
      `seeded in ${(seedMs / 1000).toFixed(1)} s (createMany × ${SEED_BATCH}, then ANALYZE)`,
      `node ${process.version}, ${cpus().length} cores, ${pg?.version.split(",")[0] ?? "PostgreSQL ?"}`,
    ].join("\n"),
  );
}, 600_000);

afterAll(async () => {
  await stack?.close();
});

const forward = (after: string | null) => stack.graphql(DatasetsForwardDocument, { first: PAGE, after });
const backward = (before: string) => stack.graphql(DatasetsBackwardDocument, { last: PAGE, before });
const pageSlugs = (data: { datasets: { edges: { node: { slug: string } }[] } }) =>
  data.datasets.edges.map((e) => e.node.slug);

it("sequential reads: the first page against deep pages, over HTTP and in the store", async () => {
  const prisma = stack.app.stores.prisma;
  const http = "HTTP+GraphQL";
  const store = "Prisma";

  // Each read returns the rows it should, checked once before it is timed.
  expect(pageSlugs(ok(await forward(null)))).toEqual(slugs(0, PAGE));
  expect(pageSlugs(ok(await forward(cursorAt(DEEP))))).toEqual(slugs(DEEP + 1, DEEP + 1 + PAGE));
  expect(pageSlugs(ok(await backward(cursorAt(NEAR_START))))).toEqual(slugs(NEAR_START - PAGE, NEAR_START));
  expect(pageSlugs(ok(await backward(cursorAt(MIDDLE))))).toEqual(slugs(MIDDLE - PAGE, MIDDLE));

  // The reads pageById makes, made directly: PAGE + 1 rows to learn whether more follow, and the
  // probe for a row on the other side of the cursor (forward: id ≤ cursor; backward: id ≥ cursor).
  const published = { status: "PUBLISHED" as const };
  const storeFirst = () =>
    prisma.dataset.findMany({ where: published, orderBy: { id: "asc" }, take: PAGE + 1 });
  const storeKeyset = () =>
    prisma.dataset.findMany({
      where: { ...published, id: { gt: ids[DEEP]! } },
      orderBy: { id: "asc" },
      take: PAGE + 1,
    });
  const storeOffset = () =>
    prisma.dataset.findMany({ where: published, orderBy: { id: "asc" }, skip: DEEP + 1, take: PAGE + 1 });
  const probe = (id: { lte: string } | { gte: string }) => () =>
    prisma.dataset.findFirst({ where: { ...published, id }, select: { id: true } });
  const expectedDeep = slugs(DEEP + 1, Math.min(DATASETS, DEEP + 2 + PAGE));
  expect((await storeKeyset()).map((d) => d.slug)).toEqual(expectedDeep);
  expect((await storeOffset()).map((d) => d.slug)).toEqual(expectedDeep);
  expect((await storeFirst()).map((d) => d.slug)).toEqual(slugs(0, PAGE + 1));

  const f = await measure(
    {
      first: { label: "first page: first: 100", path: http, run: async () => ok(await forward(null)) },
      deep: {
        label: `deep page: first: 100, after row ${DEEP}`,
        path: http,
        run: async () => ok(await forward(cursorAt(DEEP))),
      },
      back: {
        label: `backward deep: last: 100, before row ${NEAR_START}`,
        path: http,
        run: async () => ok(await backward(cursorAt(NEAR_START))),
      },
      backMiddle: {
        label: `backward middle: last: 100, before row ${MIDDLE}`,
        path: http,
        run: async () => ok(await backward(cursorAt(MIDDLE))),
      },
      storeFirst: { label: "first page, keyset (no cursor)", path: store, run: storeFirst },
      storeKeyset: { label: `deep page, keyset: id > row ${DEEP}`, path: store, run: storeKeyset },
      storeOffset: { label: `deep page, OFFSET ${DEEP + 1}`, path: store, run: storeOffset },
      probeDeep: {
        label: `exists probe, forward: id ≤ row ${DEEP}`,
        path: store,
        run: probe({ lte: ids[DEEP]! }),
      },
      probeMiddle: {
        label: `exists probe, backward: id ≥ row ${MIDDLE}`,
        path: store,
        run: probe({ gte: ids[MIDDLE]! }),
      },
    },
    { warmup: WARMUP, iterations: ITERATIONS },
  );
  const ratio = (a: Figures, b: Figures) =>
    `p50 ${(a.p50 / b.p50).toFixed(2)}×, mean ${(a.mean / b.mean).toFixed(2)}×`;
  console.log(
    [
      `sequential reads, interleaved: ${WARMUP} warm-up rounds, then ${ITERATIONS} timed of each (ms)`,
      table(
        ["read", "path", "p50", "p95", "mean", "n"],
        Object.values<Figures>(f).map((row) => [
          row.label,
          row.path,
          ms(row.p50),
          ms(row.p95),
          ms(row.mean),
          String(row.count),
        ]),
      ),
      "",
      "ratios",
      `  HTTP deep / first                ${ratio(f.deep, f.first)}`,
      `  HTTP backward deep / first       ${ratio(f.back, f.first)}`,
      `  HTTP backward middle / first     ${ratio(f.backMiddle, f.first)}`,
      `  Prisma keyset deep / first       ${ratio(f.storeKeyset, f.storeFirst)}`,
      `  Prisma OFFSET / keyset (deep)    ${ratio(f.storeOffset, f.storeKeyset)}`,
      `  Prisma probe backward / forward  ${ratio(f.probeMiddle, f.probeDeep)}`,
      `  HTTP deep / Prisma keyset        ${ratio(f.deep, f.storeKeyset)}  (HTTP + GraphQL + probe)`,
    ].join("\n"),
  );
});

it("4 concurrent clients: first, shallow, deep and backward pages", async () => {
  interface Workload {
    label: string;
    request: () => Promise<unknown>;
  }

  const slice = (request: () => Promise<unknown>, samples: number[]) =>
    concurrentSlice(request, samples, { clients: CLIENTS, ms: SLICE_MS, maxRequests: SLICE_MAX_REQUESTS });

  async function throughput<K extends string>(workloads: Record<K, Workload>) {
    const entries = Object.entries(workloads) as [K, Workload][];
    const samples = entries.map((): number[] => []);
    const seconds = entries.map(() => 0);
    for (let i = 0; i < SLICES; i++) {
      for (let k = 0; k < entries.length; k++) {
        const r = (i + k) % entries.length;
        seconds[r]! += await slice(entries[r]![1].request, samples[r]!);
      }
    }
    return Object.fromEntries(
      entries.map(([key, w], r) => [
        key,
        {
          ...figures(w.label, "HTTP+GraphQL", samples[r]!),
          seconds: seconds[r]!,
          rps: samples[r]!.length / seconds[r]!,
        },
      ]),
    ) as Record<K, Figures & { seconds: number; rps: number }>;
  }

  // Shallow: cursors in the first 1%. Deep: anywhere in the back half. Both carry a cursor, so
  // both pay the probe the first page skips: deep against shallow is the cost of depth alone,
  // shallow against first the cost of the probe. Backward: cursors anywhere.
  const randomRow = (from: number, to: number) => from + Math.floor(Math.random() * (to - from));
  expect(pageSlugs(ok(await forward(cursorAt(MIDDLE))))).toEqual(slugs(MIDDLE + 1, MIDDLE + 1 + PAGE));

  const { first, shallow, deep, back } = await throughput({
    first: { label: "first page (no cursor)", request: async () => ok(await forward(null)) },
    shallow: {
      label: "random shallow pages (first 1%)",
      request: async () => ok(await forward(cursorAt(randomRow(0, Math.ceil(DATASETS / 100))))),
    },
    deep: {
      label: "random deep pages (back half)",
      request: async () => ok(await forward(cursorAt(randomRow(MIDDLE, DATASETS - PAGE)))),
    },
    back: {
      label: "random backward pages (anywhere)",
      request: async () => ok(await backward(cursorAt(randomRow(PAGE, DATASETS)))),
    },
  });

  const rps = (a: { rps: number }, b: { rps: number }) => `${(a.rps / b.rps).toFixed(2)}×`;
  console.log(
    [
      `${CLIENTS} concurrent clients, ${SLICES} × ${SLICE_MS / 1000} s slices of each, interleaved (latency in ms)`,
      table(
        ["read", "path", "requests", "seconds", "req/s", "p50", "p95", "mean"],
        [first, shallow, deep, back].map((row) => [
          row.label,
          row.path,
          String(row.count),
          row.seconds.toFixed(1),
          row.rps.toFixed(0),
          ms(row.p50),
          ms(row.p95),
          ms(row.mean),
        ]),
      ),
      "",
      "ratios of req/s",
      `  deep / shallow      ${rps(deep, shallow)}  (the cost of depth)`,
      `  shallow / first     ${rps(shallow, first)}  (the cost of a cursor: the probe)`,
      `  deep / first        ${rps(deep, first)}`,
      `  backward / shallow  ${rps(back, shallow)}`,
    ].join("\n"),
  );
});
