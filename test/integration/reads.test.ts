// Buyers reading records through the API: what each access mode costs, that reservations never
// overdraw whatever the concurrency, that a rejected read charges nothing, and that every
// response says what it cost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeRecords, type DatasetRef } from "../../src/records/records.writer.js";
import { ref } from "../../src/records/read.service.js";
import { ident, sql } from "../../src/db/sql.js";
import {
  AggregateDocument,
  CreateDatasetDocument,
  CreditTransactionsDocument,
  MeDocument,
  PublishDatasetDocument,
  PurchaseDatasetDocument,
  QuoteReadDocument,
  RecordByKeyDocument,
  RecordsColumnsDocument,
  RecordsDocument,
  RecordsTotalDocument,
  SetAccountPlanDocument,
  TopUpCreditsDocument,
  UsageDocument,
  type CreateDatasetMutationVariables,
} from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let admin: TestAccount;
let publisher: TestAccount;
const ROWS = 1000;
const categories = ["fruit", "dairy", "bakery", "meat"];

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

async function dataset(slug: string, access: CreateDatasetMutationVariables["input"]["access"], extra = {}) {
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: slug,
        category: "retail",
        access,
        keyColumns: ["order_id"],
        columns: [
          { name: "order_id", type: "INT64", nullable: false },
          { name: "category", type: "STRING", nullable: false },
          { name: "amount", type: "DECIMAL", precision: 12, scale: 2, nullable: false },
          { name: "sold_at", type: "DATETIME", nullable: false },
        ],
        ...extra,
      },
    },
    publisher.headers,
  );
  expect(created.errors).toBeUndefined();
  const id = created.data!.createDataset.id;
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug } });
  const target: DatasetRef = ref(row);
  const rows = Array.from({ length: ROWS }, (_, i) => ({
    order_id: i + 1,
    category: categories[i % categories.length],
    amount: `${(i % 50) + 1}.25`,
    sold_at: new Date(Date.UTC(2026, 0, 1 + (i % 10), 12)).toISOString(),
  }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, target, rows, {
    version: 1,
    runId: "seed",
  });
  await stack.graphql(PublishDatasetDocument, { id }, publisher.headers);
  return id;
}

async function ledgerSum(account: TestAccount) {
  const sum = await stack.app.stores.prisma.creditTransaction.aggregate({
    where: { accountId: account.rawAccountId },
    _sum: { amount: true },
  });
  return Number(sum._sum.amount ?? 0n);
}
const balance = async (account: TestAccount) =>
  (await stack.graphql(MeDocument, {}, account.headers)).data!.me.account.creditBalance;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.admin();
  publisher = await stack.signup("Grocer Data", "PUBLISHER");
  await dataset("sales_metered", "METERED", { pricePer100Records: 2 });
  await dataset("sales_premium", "METERED", { pricePer100Records: 150 });
  await dataset("sales_open", "OPEN");
  await dataset("sales_purchased", "PURCHASED", { purchasePrice: 10, purchaseTerm: "ONE_TIME" });
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

describe("metered reads", () => {
  it("charge ceil(records / 100) × price and report the cost in the response and header", async () => {
    const buyer = await stack.signup("Reader");
    const res = await stack.graphql(RecordsDocument, { slug: "sales_metered", first: 50 }, buyer.headers);
    expect(res.errors).toBeUndefined();
    const edges = res.data!.dataset!.records.edges;
    expect(edges).toHaveLength(50);
    expect(edges[0]!.node).toEqual({
      key: "1",
      values: { order_id: "1", category: "fruit", amount: "1.25", sold_at: "2026-01-01T12:00:00Z" },
    });
    const body = res as unknown as { extensions?: { cost?: unknown } };
    expect(body.extensions?.cost).toEqual({ records: 50, credits: 2, balance: 98 });
    expect(res.headers.get("x-credits-remaining")).toBe("98");
    expect(await ledgerSum(buyer)).toBe(98);

    // The next 100 records cost one more block; without orderBy, records come in key order.
    const more = await stack.graphql(
      RecordsDocument,
      { slug: "sales_metered", first: 100, after: edges.at(-1)!.cursor },
      buyer.headers,
    );
    const keys = [...edges, ...more.data!.dataset!.records.edges].map((e) => e.node.key);
    expect(keys).toEqual([...keys].sort());
    expect(new Set(keys).size).toBe(150);
    expect(await balance(buyer)).toBe(96);
  });

  it("never overdraw: 1,000 concurrent reads against a balance for 100 charge exactly 100 times", async () => {
    const buyer = await stack.signup("Crowd");
    await stack.graphql(
      SetAccountPlanDocument,
      { accountId: buyer.accountId, plan: "ENTERPRISE", rateLimitPerMinute: 100_000 },
      admin.headers,
    );
    // 100 credits from signup + 100: a hundred reads at 2 credits.
    await stack.graphql(
      TopUpCreditsDocument,
      { accountId: buyer.accountId, amount: 100, idempotencyKey: "crowd" },
      admin.headers,
    );
    const responses = await Promise.all(
      Array.from({ length: 1000 }, () =>
        stack.graphql(RecordsDocument, { slug: "sales_metered", first: 100 }, buyer.headers),
      ),
    );
    const ok = responses.filter((r) => !r.errors);
    const other = responses.filter((r) => r.errors && code(r) !== "INSUFFICIENT_CREDITS");
    expect(other.map((r) => JSON.stringify(r.errors))).toEqual([]);
    const refused = responses.filter((r) => code(r) === "INSUFFICIENT_CREDITS");
    expect(ok).toHaveLength(100);
    expect(refused).toHaveLength(900);
    for (const r of refused) {
      expect(r.errors?.[0]?.extensions).toMatchObject({ required: 2 });
      expect(r.errors?.[0]?.extensions?.balance).toBeLessThan(2);
    }
    for (const r of ok) expect(r.data!.dataset!.records.edges).toHaveLength(100);
    expect(await balance(buyer)).toBe(0);
    expect(await ledgerSum(buyer)).toBe(0);
    // Each funded read charged once, each hold ended once; the publisher sold exactly 100 reads.
    const kinds = await stack.app.stores.prisma.creditTransaction.groupBy({
      by: ["kind"],
      where: { accountId: buyer.rawAccountId },
      _count: true,
    });
    expect(Object.fromEntries(kinds.map((k) => [k.kind, k._count]))).toEqual({
      TOP_UP: 2,
      RESERVATION: 100,
      RELEASE: 100,
      CHARGE: 100,
    });
    const sales = await stack.app.stores.prisma.sale.aggregate({
      where: { buyerAccountId: buyer.rawAccountId },
      _sum: { credits: true },
      _count: true,
    });
    expect({ count: sales._count, credits: sales._sum.credits }).toEqual({ count: 100, credits: 200n });
  }, 240_000);

  it("charge nothing for a read that fails in ClickHouse", async () => {
    const buyer = await stack.signup("Unlucky");
    await dataset("sales_broken", "METERED", { pricePer100Records: 2 });
    const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug: "sales_broken" } });
    await stack.app.stores.clickhouse.command(
      sql`DROP TABLE ${ident(stack.app.config.CLICKHOUSE_DATABASE)}.${ident(row.tableName)}`,
    );
    const res = await stack.graphql(RecordsDocument, { slug: "sales_broken", first: 100 }, buyer.headers);
    expect(res.errors).toBeDefined();
    expect(res.data?.dataset?.records ?? null).toBeNull();
    expect(await balance(buyer)).toBe(100);
    expect(await ledgerSum(buyer)).toBe(100);
    // The hold was made and given back whole: no CHARGE, no sale.
    const ledger = await stack.graphql(CreditTransactionsDocument, { first: 10 }, buyer.headers);
    expect(ledger.data!.creditTransactions.edges.map((e) => e.node.kind).sort()).toEqual([
      "RELEASE",
      "RESERVATION",
      "TOP_UP",
    ]);
    expect(await stack.app.stores.prisma.sale.count({ where: { buyerAccountId: buyer.rawAccountId } })).toBe(
      0,
    );
  });

  it("read only the columns asked for, cursors still carrying the sort columns", async () => {
    const buyer = await stack.signup("Narrow");
    const first = await stack.graphql(
      RecordsColumnsDocument,
      {
        slug: "sales_metered",
        first: 3,
        columns: ["category"],
        orderBy: [{ column: "amount", direction: "DESC" }],
      },
      buyer.headers,
    );
    expect(first.errors).toBeUndefined();
    const edges = first.data!.dataset!.records.edges;
    for (const edge of edges) expect(Object.keys(edge.node.values as object)).toEqual(["category"]);
    const next = await stack.graphql(
      RecordsColumnsDocument,
      {
        slug: "sales_metered",
        first: 3,
        after: edges.at(-1)!.cursor,
        columns: ["category", "amount"],
        orderBy: [{ column: "amount", direction: "DESC" }],
      },
      buyer.headers,
    );
    const amounts = next.data!.dataset!.records.edges.map(
      (e) => (e.node.values as { amount: string }).amount,
    );
    expect(amounts).toEqual(["50.25", "50.25", "50.25"]);
    const balanceBefore = await balance(buyer);
    for (const columns of [["nope"], ["category", "category"]]) {
      const bad = await stack.graphql(
        RecordsColumnsDocument,
        { slug: "sales_metered", first: 3, columns },
        buyer.headers,
      );
      expect(code(bad)).toBe("BAD_USER_INPUT");
    }
    expect(await balance(buyer)).toBe(balanceBefore);
  });

  it("charge nothing for a rejected read", async () => {
    const buyer = await stack.signup("Clumsy");
    const rejected = [
      await stack.graphql(
        RecordsDocument,
        { slug: "sales_metered", first: 10, filter: { column: "nope", eq: 1 } },
        buyer.headers,
      ),
      await stack.graphql(
        RecordsDocument,
        { slug: "sales_metered", first: 10, after: "forged" },
        buyer.headers,
      ),
      await stack.graphql(RecordsDocument, { slug: "sales_metered", first: 10_000 }, buyer.headers),
      await stack.graphql(
        RecordsDocument,
        { slug: "sales_metered", first: 10, filter: { column: "amount", gt: "not a number" } },
        buyer.headers,
      ),
    ];
    for (const res of rejected) expect(code(res)).toBe("BAD_USER_INPUT");
    expect(await balance(buyer)).toBe(100);
    const ledger = await stack.graphql(CreditTransactionsDocument, { first: 10 }, buyer.headers);
    expect(ledger.data!.creditTransactions.edges.map((e) => e.node.kind)).toEqual(["TOP_UP"]);
  });

  it("refuse a caller who cannot afford the reservation, before reading", async () => {
    const buyer = await stack.signup("Poor");
    const res = await stack.graphql(RecordsDocument, { slug: "sales_premium", first: 1 }, buyer.headers);
    expect(res.errors?.[0]?.extensions).toMatchObject({
      code: "INSUFFICIENT_CREDITS",
      required: 150,
      balance: 100,
    });
    expect(res.data?.dataset ?? null).toBeNull();
    const ledger = await stack.graphql(CreditTransactionsDocument, { first: 10 }, buyer.headers);
    expect(ledger.data!.creditTransactions.edges.map((e) => e.node.kind)).toEqual(["TOP_UP"]);
  });

  it("quote what a read would cost without charging", async () => {
    const buyer = await stack.signup("Careful");
    const quote = await stack.graphql(
      QuoteReadDocument,
      { slug: "sales_metered", first: 100, filter: { column: "category", eq: "fruit" } },
      buyer.headers,
    );
    expect(quote.data!.dataset!.quote).toEqual({ maxCredits: 2, records: 100, credits: 2, balance: 100 });
    const narrow = await stack.graphql(
      QuoteReadDocument,
      { slug: "sales_metered", first: 100, filter: { column: "order_id", lte: 30 } },
      buyer.headers,
    );
    expect(narrow.data!.dataset!.quote).toMatchObject({ records: 30, credits: 2 });
    expect(await balance(buyer)).toBe(100);
  });

  it("count totals for free, and look records up by key at the price of 100 records", async () => {
    const buyer = await stack.signup("Looker");
    const total = await stack.graphql(
      RecordsTotalDocument,
      { slug: "sales_metered", first: 1, filter: { column: "category", in: ["fruit", "meat"] } },
      buyer.headers,
    );
    expect(total.data!.dataset!.records.totalCount).toBe(500);
    expect(await balance(buyer)).toBe(98);

    const found = await stack.graphql(
      RecordByKeyDocument,
      { slug: "sales_metered", key: "42" },
      buyer.headers,
    );
    expect(found.data!.dataset!.record?.values.order_id).toBe("42");
    expect(await balance(buyer)).toBe(96);
    const missing = await stack.graphql(
      RecordByKeyDocument,
      { slug: "sales_metered", key: "999999" },
      buyer.headers,
    );
    expect(missing.data!.dataset!.record).toBeNull();
    expect(await balance(buyer)).toBe(96);
  });

  it("aggregate per group at the price of 100 records", async () => {
    const buyer = await stack.signup("Analyst");
    const res = await stack.graphql(
      AggregateDocument,
      {
        slug: "sales_metered",
        groupBy: [{ column: "category" }],
        metrics: [{ fn: "COUNT" }, { fn: "SUM", column: "amount", alias: "total" }],
        first: 10,
      },
      buyer.headers,
    );
    expect(res.errors).toBeUndefined();
    const groups = res.data!.dataset!.aggregate.edges.map((e) => e.node);
    expect(groups.map((g) => g.group.category)).toEqual(["bakery", "dairy", "fruit", "meat"]);
    expect(groups.every((g) => g.metrics.count === 250)).toBe(true);
    expect(await balance(buyer)).toBe(98);
  });
});

describe("access", () => {
  it("OPEN datasets are free; anonymous callers read nothing", async () => {
    const buyer = await stack.signup("Freeloader");
    const res = await stack.graphql(RecordsDocument, { slug: "sales_open", first: 100 }, buyer.headers);
    expect(res.data!.dataset!.records.edges).toHaveLength(100);
    expect(await balance(buyer)).toBe(100);
    const anonymous = await stack.graphql(RecordsDocument, { slug: "sales_open", first: 1 });
    expect(code(anonymous)).toBe("UNAUTHENTICATED");
  });

  it("PURCHASED datasets need a purchase; then reads are free", async () => {
    const buyer = await stack.signup("Subscriber");
    const denied = await stack.graphql(
      RecordsDocument,
      { slug: "sales_purchased", first: 10 },
      buyer.headers,
    );
    expect(code(denied)).toBe("FORBIDDEN");
    expect(await balance(buyer)).toBe(100);
    const dataset = await stack.app.stores.prisma.dataset.findUniqueOrThrow({
      where: { slug: "sales_purchased" },
    });
    const bought = await stack.graphql(
      PurchaseDatasetDocument,
      { datasetId: Buffer.from(`Dataset:${dataset.id}`).toString("base64") },
      buyer.headers,
    );
    expect(bought.data?.purchaseDataset.balance).toBe(90);
    const allowed = await stack.graphql(
      RecordsDocument,
      { slug: "sales_purchased", first: 10 },
      buyer.headers,
    );
    expect(allowed.data!.dataset!.records.edges).toHaveLength(10);
    expect(await balance(buyer)).toBe(90);
  });

  it("publishers read their own datasets free", async () => {
    const before = await balance(publisher);
    const res = await stack.graphql(
      RecordsDocument,
      { slug: "sales_metered", first: 100 },
      publisher.headers,
    );
    expect(res.data!.dataset!.records.edges).toHaveLength(100);
    expect(await balance(publisher)).toBe(before);
  });

  it("every read is in the buyer's usage report", async () => {
    const buyer = await stack.signup("Tracked");
    await stack.graphql(
      TopUpCreditsDocument,
      { accountId: buyer.accountId, amount: 10, idempotencyKey: "usage-topup" },
      admin.headers,
    );
    await stack.graphql(RecordsDocument, { slug: "sales_metered", first: 100 }, buyer.headers);
    await stack.graphql(RecordsDocument, { slug: "sales_metered", first: 30 }, buyer.headers);
    const range = {
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    };
    const usage = await stack.graphql(UsageDocument, { ...range, groupBy: "OPERATION" }, buyer.headers);
    expect(usage.data?.usage).toEqual([{ group: "records", requests: 2, records: 130, credits: 4 }]);
  });
});
