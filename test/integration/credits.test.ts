// Money through the API: admin top-ups applied once per key, purchases that grant access and
// charge exactly once (or nothing), sales statistics and usage reports.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { recordUsage } from "../../src/credits/usage.js";
import {
  CreateDatasetDocument,
  CreditTransactionsDocument,
  MeDocument,
  PublishDatasetDocument,
  PurchaseDatasetDocument,
  SalesStatsDocument,
  TopUpCreditsDocument,
  UsageDocument,
} from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let admin: TestAccount;
let publisher: TestAccount;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;
const balance = async (account: TestAccount) =>
  (await stack.graphql(MeDocument, {}, account.headers)).data!.me.account.creditBalance;

async function purchasable(slug: string, price: number, term: "ONE_TIME" | "MONTHLY" = "ONE_TIME") {
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: slug,
        category: "Finance",
        access: "PURCHASED",
        purchasePrice: price,
        purchaseTerm: term,
        keyColumns: ["id"],
        columns: [{ name: "id", type: "STRING", nullable: false }],
      },
    },
    publisher.headers,
  );
  const id = created.data!.createDataset.id;
  await stack.graphql(PublishDatasetDocument, { id }, publisher.headers);
  return id;
}

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.admin();
  publisher = await stack.signup("Ticker Co", "PUBLISHER");
});

afterAll(async () => {
  await stack?.close();
});

describe("top-ups", () => {
  it("apply once per idempotency key, and only for admins", async () => {
    const buyer = await stack.signup("Topped");
    const args = { accountId: buyer.accountId, amount: 250, idempotencyKey: "invoice-2026-11-0001" };
    const first = await stack.graphql(TopUpCreditsDocument, args, admin.headers);
    expect(first.data?.topUpCredits).toEqual({
      replayed: false,
      transaction: { kind: "TOP_UP", amount: 250, balanceAfter: 350 },
    });
    const retries = await Promise.all(
      Array.from({ length: 5 }, () => stack.graphql(TopUpCreditsDocument, args, admin.headers)),
    );
    for (const retry of retries) expect(retry.data?.topUpCredits.replayed).toBe(true);
    expect(await balance(buyer)).toBe(350);

    expect(
      code(await stack.graphql(TopUpCreditsDocument, { ...args, idempotencyKey: "x" }, buyer.headers)),
    ).toBe("FORBIDDEN");
    expect(code(await stack.graphql(TopUpCreditsDocument, { ...args, amount: 0 }, admin.headers))).toBe(
      "BAD_USER_INPUT",
    );
    const ledger = await stack.graphql(CreditTransactionsDocument, { first: 10 }, buyer.headers);
    const entries = ledger.data!.creditTransactions.edges.map((e) => e.node);
    expect(entries.reduce((sum, e) => sum + e.amount, 0)).toBe(350);
  });
});

describe("purchases", () => {
  it("grant access, record the sale and charge once", async () => {
    const buyer = await stack.signup("Shopper");
    const id = await purchasable("quotes_eod", 30);
    const bought = await stack.graphql(
      PurchaseDatasetDocument,
      { datasetId: id, idempotencyKey: "order-1" },
      buyer.headers,
    );
    expect(bought.errors).toBeUndefined();
    expect(bought.data?.purchaseDataset).toMatchObject({
      balance: 70,
      replayed: false,
      purchase: { status: "ACTIVE", expiresAt: null, dataset: { slug: "quotes_eod" } },
      sale: { kind: "PURCHASE", credits: 30 },
    });
    const retry = await stack.graphql(
      PurchaseDatasetDocument,
      { datasetId: id, idempotencyKey: "order-1" },
      buyer.headers,
    );
    expect(retry.data?.purchaseDataset.replayed).toBe(true);
    expect(code(await stack.graphql(PurchaseDatasetDocument, { datasetId: id }, buyer.headers))).toBe(
      "CONFLICT",
    );
    expect(await balance(buyer)).toBe(70);
  });

  it("refuse a buyer who cannot pay, and write nothing", async () => {
    const buyer = await stack.signup("Broke");
    const id = await purchasable("quotes_tick", 500, "MONTHLY");
    const res = await stack.graphql(PurchaseDatasetDocument, { datasetId: id }, buyer.headers);
    expect(res.errors?.[0]?.extensions).toMatchObject({
      code: "INSUFFICIENT_CREDITS",
      required: 500,
      balance: 100,
    });
    expect(await balance(buyer)).toBe(100);
    const prisma = stack.app.stores.prisma;
    expect(await prisma.purchase.count({ where: { accountId: buyer.rawAccountId } })).toBe(0);
    expect(await prisma.sale.count({ where: { buyerAccountId: buyer.rawAccountId } })).toBe(0);
    expect(await prisma.creditTransaction.count({ where: { accountId: buyer.rawAccountId } })).toBe(1); // signup grant
  });

  it("cannot buy what the caller cannot see", async () => {
    const buyer = await stack.signup("Peeker");
    const created = await stack.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug: "unreleased",
          title: "Unreleased",
          category: "Finance",
          access: "PURCHASED",
          purchasePrice: 1,
          purchaseTerm: "ONE_TIME",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "STRING", nullable: false }],
        },
      },
      publisher.headers,
    );
    const res = await stack.graphql(
      PurchaseDatasetDocument,
      { datasetId: created.data!.createDataset.id },
      buyer.headers,
    );
    expect(code(res)).toBe("NOT_FOUND");
  });
});

describe("sales statistics", () => {
  it("count and total the publisher's sales by day, dataset and category", async () => {
    const day = new Date().toISOString().slice(0, 10);
    const range = {
      from: new Date(Date.now() - 86_400_000).toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
    };
    const byDataset = await stack.graphql(
      SalesStatsDocument,
      { ...range, groupBy: "DATASET" },
      publisher.headers,
    );
    expect(byDataset.data?.salesStats).toEqual([{ group: "quotes_eod", sales: 1, credits: 30, records: 0 }]);
    const byDay = await stack.graphql(SalesStatsDocument, { ...range, groupBy: "DAY" }, publisher.headers);
    expect(byDay.data?.salesStats).toEqual([{ group: day, sales: 1, credits: 30, records: 0 }]);
    const byCategory = await stack.graphql(
      SalesStatsDocument,
      { ...range, groupBy: "CATEGORY" },
      publisher.headers,
    );
    expect(byCategory.data?.salesStats).toEqual([{ group: "finance", sales: 1, credits: 30, records: 0 }]);

    const other = await stack.signup("Other Pub", "PUBLISHER");
    expect(
      (await stack.graphql(SalesStatsDocument, { ...range, groupBy: "DAY" }, other.headers)).data?.salesStats,
    ).toEqual([]);
    const buyer = await stack.signup("Curious");
    expect(code(await stack.graphql(SalesStatsDocument, { ...range, groupBy: "DAY" }, buyer.headers))).toBe(
      "FORBIDDEN",
    );
  });
});

describe("usage", () => {
  it("reports the caller's own usage events, and nobody else's", async () => {
    const buyer = await stack.signup("Metered");
    const other = await stack.signup("Elsewhere");
    const at = new Date();
    for (const [account, records] of [
      [buyer, 120],
      [buyer, 30],
      [other, 999],
    ] as const) {
      await recordUsage(stack.app.stores.clickhouse, {
        accountId: account.rawAccountId,
        datasetId: "d1",
        operation: "records",
        records,
        credits: Math.ceil(records / 100),
        durationMs: 5,
        requestId: "r",
        at,
      });
    }
    const range = {
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    };
    const res = await stack.graphql(UsageDocument, { ...range, groupBy: "OPERATION" }, buyer.headers);
    expect(res.data?.usage).toEqual([{ group: "records", requests: 2, records: 150, credits: 3 }]);
    const snoop = await stack.graphql(
      UsageDocument,
      { ...range, groupBy: "DAY", accountId: other.accountId },
      buyer.headers,
    );
    expect(code(snoop)).toBe("NOT_FOUND");
    const asAdmin = await stack.graphql(
      UsageDocument,
      { ...range, groupBy: "DATASET", accountId: other.accountId },
      admin.headers,
    );
    expect(asAdmin.data?.usage).toEqual([{ group: "d1", requests: 1, records: 999, credits: 10 }]);
  });
});
