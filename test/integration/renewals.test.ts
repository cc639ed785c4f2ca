// Entitlements: a buyer's purchases connection, MONTHLY purchases renewed from credits by a job
// that every worker runs (two API processes, each with its own pg-boss worker and connections,
// plus direct passes of the job's code from both: a term is charged once), a renewal the balance
// cannot pay told once per term (purchase.renewal_failed) and left to lapse, and a cancelled
// purchase lapsing at its term end.
import type { DomainEvent } from "../../src/events/events.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { RENEWAL_QUEUE } from "../../src/purchases/purchase.jobs.js";
import { SUBSCRIPTION_PERIOD_MS } from "../../src/credits/ledger.js";
import {
  BuyMonthlyDocument,
  CancelPurchaseDocument,
  CreateDatasetDocument,
  CreditTransactionsDocument,
  EarningsEntriesDocument,
  MeDocument,
  PublishDatasetDocument,
  PurchasesDocument,
  ResumePurchaseDocument,
  TopUpCreditsDocument,
} from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

let apiA: TestStack;
let apiB: TestStack;
let admin: TestAccount;
const events: DomainEvent[] = [];

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  apiA = await startStack({}, { worker: true });
  apiB = await startStack({}, { worker: true, sharing: apiA });
  admin = await apiA.admin();
  for (const api of [apiA, apiB]) {
    api.app.services.events.addSink({ name: "test", handle: async (event) => void events.push(event) });
  }
});

afterAll(async () => {
  await apiB?.close();
  await apiA?.close();
});

const prisma = () => apiA.app.stores.prisma;

async function monthly(publisher: TestAccount, slug: string, price: number): Promise<string> {
  const created = ok(
    await apiA.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: slug,
          category: "Energy",
          access: "PURCHASED",
          purchasePrice: price,
          purchaseTerm: "MONTHLY",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "STRING", nullable: false }],
        },
      },
      publisher.headers,
    ),
  );
  ok(await apiA.graphql(PublishDatasetDocument, { id: created.createDataset.id }, publisher.headers));
  return created.createDataset.id;
}

/** A new buyer (its plan's starting credits, topped up to `atLeast`) subscribed to the dataset. */
async function subscriber(name: string, datasetId: string, atLeast = 0) {
  const buyer = await apiA.signup(name);
  const start = ok(await apiA.graphql(MeDocument, {}, buyer.headers)).me.account!.creditBalance;
  if (start < atLeast) {
    const topUp = { accountId: buyer.accountId, amount: atLeast - start, idempotencyKey: `${name}-start` };
    ok(await apiA.graphql(TopUpCreditsDocument, topUp, admin.headers));
  }
  const bought = ok(await apiA.graphql(BuyMonthlyDocument, { datasetId }, buyer.headers)).purchaseDataset;
  return {
    buyer,
    balance: bought.balance,
    purchaseId: bought.purchase.id,
    rawPurchaseId: decodeGlobalId(bought.purchase.id).id,
  };
}

const balanceOf = async (buyer: TestAccount) =>
  ok(await apiA.graphql(MeDocument, {}, buyer.headers)).me.account!.creditBalance;

/** Moves a purchase's term end to `at` (as if a month had passed), returning it. */
async function termEndsAt(rawPurchaseId: string, at: Date): Promise<Date> {
  await prisma().purchase.update({ where: { id: rawPurchaseId }, data: { expiresAt: at } });
  return at;
}

async function purchaseOf(buyer: TestAccount) {
  return ok(await apiA.graphql(PurchasesDocument, {}, buyer.headers)).purchases.edges.map((e) => e.node);
}

async function renewalJobsPending(): Promise<number> {
  const schema = apiA.app.config.PGBOSS_SCHEMA;
  const rows = await prisma().$queryRawUnsafe<{ n: bigint }[]>(
    `SELECT count(*) AS n FROM "${schema}".job WHERE name = $1 AND state IN ('created', 'retry', 'active')`,
    RENEWAL_QUEUE,
  );
  return Number(rows[0]!.n);
}

describe("MONTHLY purchases", () => {
  it("are listed with term, start, expiry and renewal, to their buyer only", async () => {
    const publisher = await apiA.signup("Grid Feeds", "PUBLISHER");
    const datasetId = await monthly(publisher, "grid_load_monthly", 30);
    const { buyer, purchaseId } = await subscriber("Listing Buyer", datasetId);
    const [purchase] = await purchaseOf(buyer);
    expect(purchase).toMatchObject({
      id: purchaseId,
      status: "ACTIVE",
      term: "MONTHLY",
      autoRenew: true,
      renewalFailed: false,
      dataset: { slug: "grid_load_monthly" },
    });
    expect(Date.parse(purchase!.expiresAt!) - Date.parse(purchase!.createdAt)).toBeCloseTo(
      SUBSCRIPTION_PERIOD_MS,
      -3,
    );
    expect(purchase!.renewsAt).toBe(purchase!.expiresAt);
    const other = await apiA.signup("Nosy Buyer");
    expect(await purchaseOf(other)).toEqual([]);
    expect(code(await apiA.graphql(CancelPurchaseDocument, { id: purchaseId }, other.headers))).toBe(
      "NOT_FOUND",
    );
    expect(await purchaseOf(publisher)).toEqual([]);
  });

  it("renew once per term across two workers", async () => {
    const publisher = await apiA.signup("Wind Farms", "PUBLISHER");
    const datasetId = await monthly(publisher, "wind_output_monthly", 30);
    const { buyer, rawPurchaseId, balance } = await subscriber("Renewing Buyer", datasetId, 100);
    // The term ends in ten minutes: inside the renewal lead time (an hour).
    const termEnd = await termEndsAt(rawPurchaseId, new Date(Date.now() + 10 * 60_000));

    // Both workers get the job several times, and both processes run its code at once besides.
    for (const api of [apiA, apiB]) {
      for (let i = 0; i < 4; i++) await api.app.services.jobs.send(RENEWAL_QUEUE, {});
    }
    const direct = await Promise.all(
      [apiA, apiB, apiA, apiB, apiA, apiB].map((api) => api.app.services.purchases.renewals.tick(new Date())),
    );
    await until("the renewal jobs to finish", async () => (await renewalJobsPending()) === 0);

    expect(direct.reduce((n, t) => n + t.renewed, 0)).toBeLessThanOrEqual(1);
    const [purchase] = await purchaseOf(buyer);
    expect(Date.parse(purchase!.expiresAt!)).toBe(termEnd.getTime() + SUBSCRIPTION_PERIOD_MS);
    expect(purchase!.status).toBe("ACTIVE");
    expect(await balanceOf(buyer)).toBe(balance - 30);
    const ledger = ok(await apiA.graphql(CreditTransactionsDocument, { first: 50 }, buyer.headers));
    expect(
      ledger.creditTransactions.edges.filter((e) => e.node.kind === "PURCHASE").map((e) => e.node.amount),
    ).toEqual([-30, -30]);
    const sales = await prisma().sale.findMany({
      where: { purchaseId: rawPurchaseId },
      orderBy: { id: "asc" },
    });
    expect(sales.map((s) => [s.kind, Number(s.credits)])).toEqual([
      ["SUBSCRIPTION", 30],
      ["SUBSCRIPTION", 30],
    ]);
    // The publisher earned both terms.
    const earned = ok(await apiA.graphql(EarningsEntriesDocument, { first: 50 }, publisher.headers));
    expect(earned.earningsEntries.edges.map((e) => [e.node.kind, e.node.gross])).toEqual([
      ["SALE", 30],
      ["SALE", 30],
    ]);

    // The next pass, well inside the new term, charges nothing.
    expect((await apiB.app.services.purchases.renewals.tick(new Date())).renewed).toBe(0);
  });

  it("tell a renewal the balance cannot pay once per term, retry it, and lapse at term end", async () => {
    const publisher = await apiA.signup("Solar Yield", "PUBLISHER");
    // Priced so that what the first term leaves of a new account's credits cannot pay the second.
    const starting = await balanceOf(await apiA.signup("Balance Probe"));
    expect(starting).toBeGreaterThan(2);
    const price = starting - 1;
    const datasetId = await monthly(publisher, "solar_yield_monthly", price);
    const { buyer, rawPurchaseId, purchaseId, balance } = await subscriber("Short Buyer", datasetId);
    expect(balance).toBeLessThan(price);
    const termEnd = await termEndsAt(rawPurchaseId, new Date(Date.now() + 10 * 60_000));
    const renewals = apiA.app.services.purchases.renewals;

    const before = new Date();
    // (The workers' own cron pass may get there first: what counts is that it is told once.)
    await Promise.all([renewals.tick(before), apiB.app.services.purchases.renewals.tick(before)]);
    expect((await renewals.tick(new Date())).failed).toBe(0);
    const told = events.filter(
      (e) => e.type === "purchase.renewal_failed" && e.data.purchaseId === rawPurchaseId,
    );
    expect(told.map((e) => e.data)).toEqual([
      {
        accountId: buyer.rawAccountId,
        purchaseId: rawPurchaseId,
        datasetId: decodeGlobalId(datasetId).id,
        required: String(price),
        balance: String(balance),
        expiresAt: termEnd.toISOString(),
      },
    ]);
    expect((await purchaseOf(buyer))[0]).toMatchObject({
      id: purchaseId,
      status: "ACTIVE",
      renewalFailed: true,
    });

    // The term ends unrenewed: the purchase lapses, and nothing was charged.
    const after = new Date(termEnd.getTime() + 1000);
    expect(await renewals.tick(after)).toMatchObject({ renewed: 0, lapsed: 1 });
    expect((await purchaseOf(buyer))[0]).toMatchObject({ status: "EXPIRED", renewsAt: null });
    expect(await balanceOf(buyer)).toBe(balance);
  });

  it("lapse at term end once cancelled, and renew again once resumed", async () => {
    const publisher = await apiA.signup("Tidal Data", "PUBLISHER");
    const datasetId = await monthly(publisher, "tidal_monthly", 30);
    const { buyer, rawPurchaseId, purchaseId, balance } = await subscriber(
      "Cancelling Buyer",
      datasetId,
      100,
    );
    const renewals = apiA.app.services.purchases.renewals;

    // Cancelled before its term comes due (the workers' cron pass runs every minute).
    const cancelled = ok(await apiA.graphql(CancelPurchaseDocument, { id: purchaseId }, buyer.headers));
    expect(cancelled.cancelPurchase).toMatchObject({ status: "ACTIVE", autoRenew: false, renewsAt: null });
    const resumed = ok(await apiA.graphql(ResumePurchaseDocument, { id: purchaseId }, buyer.headers));
    expect(resumed.resumePurchase).toMatchObject({
      autoRenew: true,
      renewsAt: cancelled.cancelPurchase.expiresAt,
    });
    ok(await apiA.graphql(CancelPurchaseDocument, { id: purchaseId }, buyer.headers));
    const termEnd = await termEndsAt(rawPurchaseId, new Date(Date.now() + 10 * 60_000));
    expect((await renewals.tick(new Date())).renewed).toBe(0);

    expect(await renewals.tick(new Date(termEnd.getTime() + 1000))).toMatchObject({ renewed: 0, lapsed: 1 });
    expect((await purchaseOf(buyer))[0]).toMatchObject({ status: "EXPIRED" });
    expect(await balanceOf(buyer)).toBe(balance);
    expect(code(await apiA.graphql(ResumePurchaseDocument, { id: purchaseId }, buyer.headers))).toBe(
      "BAD_USER_INPUT",
    );
  });
});
