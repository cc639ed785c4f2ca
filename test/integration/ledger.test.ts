// The ledger on a real PostgreSQL (a database of its own, cloned from the migrated template):
// balances never go negative under concurrency, the ledger always sums to the balance, retries are
// applied once, and a purchase is all-or-nothing.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger, SUBSCRIPTION_PERIOD_MS, type PurchasableDataset } from "../../src/credits/ledger.js";
import { createPrisma, type PrismaClient } from "../../src/db/prisma.js";
import { AppError } from "../../src/errors.js";
import type { DatasetAccess, PurchaseTerm } from "../../src/generated/prisma/client.js";
import { baseConfig, freshPostgres, uniqueName } from "../support/databases.js";

let db: { url: string; drop(): Promise<void> };
let prisma: PrismaClient;
let ledger: Ledger;
let planId: string;

beforeAll(async () => {
  db = await freshPostgres(baseConfig());
  prisma = createPrisma(db.url, 10);
  ledger = new Ledger(prisma);
  planId = (await prisma.plan.findUniqueOrThrow({ where: { code: "FREE" } })).id;
});

afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
});

/** A fresh account whose ledger starts with one TOP_UP of `credits`. */
async function account(credits = 0n): Promise<string> {
  const name = uniqueName("acct");
  const { id } = await prisma.account.create({ data: { name, slug: name, planId } });
  if (credits > 0n) await ledger.topUp(id, credits, "opening-balance");
  return id;
}

async function dataset(
  sellerId: string,
  access: DatasetAccess,
  purchasePrice: bigint | null = null,
  purchaseTerm: PurchaseTerm | null = null,
): Promise<PurchasableDataset> {
  const name = uniqueName("ds");
  return prisma.dataset.create({
    data: {
      accountId: sellerId,
      slug: name,
      title: name,
      category: "test",
      columns: [],
      keyColumns: ["id"],
      tableName: name,
      access,
      purchasePrice,
      purchaseTerm,
    },
    select: { id: true, accountId: true, access: true, purchasePrice: true, purchaseTerm: true },
  });
}

async function balance(accountId: string): Promise<bigint> {
  return ledger.balance(accountId);
}

async function ledgerSum(accountId: string): Promise<bigint> {
  const { _sum } = await prisma.creditTransaction.aggregate({ where: { accountId }, _sum: { amount: true } });
  return _sum.amount ?? 0n;
}

// In id order, as the creditTransactions connection pages them (ids are UUIDv7, made by Prisma
// when the row is written, which is after the account lock was taken).
async function entries(accountId: string) {
  return prisma.creditTransaction.findMany({ where: { accountId }, orderBy: { id: "asc" } });
}

/** The ledger sums to the balance, and each row's balanceAfter is the running sum up to it. */
async function expectConsistent(accountId: string): Promise<void> {
  const rows = await entries(accountId);
  let running = 0n;
  for (const row of rows) {
    running += row.amount;
    expect(row.balanceAfter).toBe(running);
  }
  expect(await ledgerSum(accountId)).toBe(running);
  expect(await balance(accountId)).toBe(running);
}

async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to fail");
}

async function appError(promise: Promise<unknown>): Promise<AppError> {
  const error = await failure(promise);
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}

describe("reserve and settle under concurrency", () => {
  it("lets exactly 50 of 200 concurrent 2-credit reads through a balance of 100, never below zero", async () => {
    const buyer = await account(100n);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 200 }, async (_, i) => {
        const reservation = await ledger.reserve(buyer, 2n, { reference: `read-${i}` });
        return ledger.settle(reservation, 2n);
      }),
    );

    const settled = outcomes.flatMap((o) => (o.status === "fulfilled" ? [o.value] : []));
    const errors = outcomes.flatMap((o) => (o.status === "rejected" ? [o.reason as unknown] : []));
    expect(settled).toHaveLength(50);
    expect(errors).toHaveLength(150);
    // Every failure is the conditional UPDATE saying no: no CHECK violation, no pool timeout, no
    // other database error escaped.
    for (const error of errors) {
      expect(error).toBeInstanceOf(AppError);
      const { code, fields } = error as AppError;
      expect(code).toBe("INSUFFICIENT_CREDITS");
      expect(fields.required).toBe(2);
      expect(typeof fields.balance).toBe("number");
      expect(fields.balance as number).toBeGreaterThanOrEqual(0);
      expect(fields.balance as number).toBeLessThan(2);
    }
    for (const { charged, balance: after } of settled) {
      expect(charged).toBe(2n);
      expect(after).toBeGreaterThanOrEqual(0n);
    }

    expect(await balance(buyer)).toBe(0n);
    expect(await ledgerSum(buyer)).toBe(0n);
    await expectConsistent(buyer);
    const rows = await entries(buyer);
    expect(rows.every((row) => row.balanceAfter >= 0n)).toBe(true);
    expect(rows[0]).toMatchObject({ kind: "TOP_UP", amount: 100n, balanceAfter: 100n });
    const count = (kind: string) => rows.filter((row) => row.kind === kind).length;
    expect([count("RESERVATION"), count("RELEASE"), count("CHARGE")]).toEqual([50, 50, 50]);
    expect(rows.length).toBe(151);

    // The CHECK constraint is still there as a backstop; it simply never had to act.
    const [check] = await prisma.$queryRaw<{ conname: string }[]>`
      SELECT conname FROM pg_constraint WHERE conname = 'accounts_credit_balance_check'`;
    expect(check?.conname).toBe("accounts_credit_balance_check");
  });
});

describe("reserve, settle and release", () => {
  it("refuses a reservation the balance cannot cover and writes nothing", async () => {
    const buyer = await account(5n);
    const error = await appError(ledger.reserve(buyer, 6n, { reference: "too-big" }));
    expect(error.code).toBe("INSUFFICIENT_CREDITS");
    expect(error.fields).toEqual({ required: 6, balance: 5 });
    expect(await entries(buyer)).toHaveLength(1);
    expect(await balance(buyer)).toBe(5n);
  });

  it("settles a partial read: the hold comes back whole and the real cost is charged", async () => {
    const buyer = await account(100n);
    const seller = await account();
    const ds = await dataset(seller, "METERED");
    const reservation = await ledger.reserve(buyer, 30n, { reference: "req-1", datasetId: ds.id });
    expect(reservation).toMatchObject({
      accountId: buyer,
      amount: 30n,
      reference: "req-1",
      datasetId: ds.id,
    });
    expect(await balance(buyer)).toBe(70n);
    await expectConsistent(buyer);

    const result = await ledger.settle(reservation, 12n, {
      sale: { sellerAccountId: seller, records: 1150 },
    });
    expect(result).toEqual({ charged: 12n, balance: 88n });
    await expectConsistent(buyer);
    const rows = await entries(buyer);
    expect(
      rows.slice(1).map(({ kind, amount, balanceAfter, reference, datasetId }) => ({
        kind,
        amount,
        balanceAfter,
        reference,
        datasetId,
      })),
    ).toEqual([
      { kind: "RESERVATION", amount: -30n, balanceAfter: 70n, reference: "req-1", datasetId: ds.id },
      { kind: "RELEASE", amount: 30n, balanceAfter: 100n, reference: "req-1", datasetId: ds.id },
      { kind: "CHARGE", amount: -12n, balanceAfter: 88n, reference: "req-1", datasetId: ds.id },
    ]);
    const sales = await prisma.sale.findMany({ where: { buyerAccountId: buyer } });
    expect(sales).toEqual([
      expect.objectContaining({
        kind: "METERED",
        datasetId: ds.id,
        sellerAccountId: seller,
        credits: 12n,
        records: 1150n,
        purchaseId: null,
      }),
    ]);
    // The seller's balance is not touched by a sale (proceeds are paid out from Sale rows).
    expect(await balance(seller)).toBe(0n);
  });

  it("releases everything when the read fails", async () => {
    const buyer = await account(50n);
    const reservation = await ledger.reserve(buyer, 40n, { reference: "req-fail" });
    expect(await balance(buyer)).toBe(10n);
    expect(await ledger.release(reservation)).toEqual({ released: 40n, balance: 50n });
    await expectConsistent(buyer);
    const rows = await entries(buyer);
    expect(rows.map((r) => [r.kind, r.amount])).toEqual([
      ["TOP_UP", 50n],
      ["RESERVATION", -40n],
      ["RELEASE", 40n],
    ]);
  });

  it("ends a hold once: a second settle or a release after settle is a CONFLICT", async () => {
    const buyer = await account(20n);
    const reservation = await ledger.reserve(buyer, 10n, { reference: "once" });
    await ledger.settle(reservation, 4n);
    expect((await appError(ledger.settle(reservation, 4n))).code).toBe("CONFLICT");
    expect((await appError(ledger.release(reservation))).code).toBe("CONFLICT");
    expect(await balance(buyer)).toBe(16n);
    await expectConsistent(buyer);

    const other = await ledger.reserve(buyer, 6n, { reference: "once-2" });
    await ledger.release(other);
    expect((await appError(ledger.settle(other, 0n))).code).toBe("CONFLICT");
    expect(await balance(buyer)).toBe(16n);
    await expectConsistent(buyer);
  });

  it("settles the same hold once even when two settles race", async () => {
    const buyer = await account(20n);
    const reservation = await ledger.reserve(buyer, 10n, { reference: "race" });
    const outcomes = await Promise.allSettled([
      ledger.settle(reservation, 3n),
      ledger.settle(reservation, 3n),
    ]);
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const [rejected] = outcomes.filter((o) => o.status === "rejected");
    expect((rejected as PromiseRejectedResult).reason).toMatchObject({ code: "CONFLICT" });
    expect(await balance(buyer)).toBe(17n);
    await expectConsistent(buyer);
  });

  it("never charges more than was held, and trusts the ledger over the Reservation object", async () => {
    const buyer = await account(20n);
    const reservation = await ledger.reserve(buyer, 5n, { reference: "forged" });
    await expect(ledger.settle(reservation, 6n)).rejects.toThrow(RangeError);
    const forged = { ...reservation, amount: 1_000n };
    await expect(ledger.settle(forged, 6n)).rejects.toThrow(RangeError);
    expect(await balance(buyer)).toBe(15n);
    // A release gives back what the RESERVATION row holds, not what the object claims.
    expect(await ledger.release(forged)).toEqual({ released: 5n, balance: 20n });
    await expectConsistent(buyer);
  });

  it("treats a zero reservation as a free read that writes nothing", async () => {
    const buyer = await account(3n);
    const reservation = await ledger.reserve(buyer, 0n, { reference: "free" });
    expect(reservation.id).toBeNull();
    expect(await ledger.settle(reservation, 0n)).toEqual({ charged: 0n, balance: 3n });
    expect(await ledger.release(reservation)).toEqual({ released: 0n, balance: 3n });
    expect(await entries(buyer)).toHaveLength(1);
  });

  it("charges zero for an empty read but still leaves its CHARGE row", async () => {
    const buyer = await account(10n);
    const reservation = await ledger.reserve(buyer, 4n, { reference: "empty" });
    expect(await ledger.settle(reservation, 0n)).toEqual({ charged: 0n, balance: 10n });
    const rows = await entries(buyer);
    expect(rows.at(-1)).toMatchObject({ kind: "CHARGE", amount: 0n, balanceAfter: 10n });
    await expectConsistent(buyer);
  });

  it("answers NOT_FOUND for an unknown account", async () => {
    expect((await appError(ledger.reserve(randomUUID(), 1n, { reference: "x" }))).code).toBe("NOT_FOUND");
    expect((await appError(ledger.topUp(randomUUID(), 1n, "k"))).code).toBe("NOT_FOUND");
  });
});

describe("topUp", () => {
  it("applies a key once and returns the original transaction on retry", async () => {
    const id = await account();
    const first = await ledger.topUp(id, 25n, "payment-1", "stripe:pi_1");
    expect(first.replayed).toBe(false);
    expect(first.transaction).toMatchObject({
      kind: "TOP_UP",
      amount: 25n,
      balanceAfter: 25n,
      reference: "stripe:pi_1",
    });
    const retry = await ledger.topUp(id, 25n, "payment-1", "stripe:pi_1");
    expect(retry).toEqual({ transaction: first.transaction, replayed: true });
    expect(await balance(id)).toBe(25n);

    await ledger.topUp(id, 5n, "payment-2");
    expect(await balance(id)).toBe(30n);
    await expectConsistent(id);
  });

  it("refuses to reuse a key for another amount", async () => {
    const id = await account();
    await ledger.topUp(id, 10n, "payment-x");
    const error = await appError(ledger.topUp(id, 11n, "payment-x"));
    expect(error.code).toBe("CONFLICT");
    expect(await balance(id)).toBe(10n);
  });

  it("applies 10 concurrent calls with the same key once, and all get the same transaction", async () => {
    const id = await account();
    const results = await Promise.all(Array.from({ length: 10 }, () => ledger.topUp(id, 7n, "same-key")));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.transaction.id)).size).toBe(1);
    expect(await balance(id)).toBe(7n);
    expect(await entries(id)).toHaveLength(1);
    await expectConsistent(id);
  });

  it("rejects amounts that are not positive, and bad keys", async () => {
    const id = await account();
    for (const amount of [0n, -5n]) {
      const error = await appError(ledger.topUp(id, amount, `k${amount}`));
      expect(error.code).toBe("BAD_USER_INPUT");
      expect(error.fields).toEqual({ field: "amount" });
    }
    expect((await appError(ledger.topUp(id, 1n, ""))).code).toBe("BAD_USER_INPUT");
    expect((await appError(ledger.topUp(id, 1n, "k".repeat(201)))).code).toBe("BAD_USER_INPUT");
    expect(await entries(id)).toHaveLength(0);
  });
});

describe("purchase", () => {
  it("writes the debit, the PURCHASE entry, the entitlement and the sale together", async () => {
    const buyer = await account(100n);
    const seller = await account();
    const ds = await dataset(seller, "PURCHASED", 30n, "ONE_TIME");
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(false);

    const { purchase, sale, transaction, replayed } = await ledger.purchase(buyer, ds);
    expect(replayed).toBe(false);
    expect(purchase).toMatchObject({ accountId: buyer, datasetId: ds.id, status: "ACTIVE", expiresAt: null });
    expect(sale).toMatchObject({
      kind: "PURCHASE",
      datasetId: ds.id,
      buyerAccountId: buyer,
      sellerAccountId: seller,
      purchaseId: purchase.id,
      credits: 30n,
      records: 0n,
    });
    expect(transaction).toMatchObject({
      kind: "PURCHASE",
      amount: -30n,
      balanceAfter: 70n,
      datasetId: ds.id,
      reference: `sale:${sale.id}`,
    });
    expect(await balance(buyer)).toBe(70n);
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(true);
    await expectConsistent(buyer);

    // Buying an active entitlement again changes nothing.
    const again = await appError(ledger.purchase(buyer, ds));
    expect(again.code).toBe("CONFLICT");
    expect(again.fields).toMatchObject({ purchaseId: purchase.id });
    expect(await balance(buyer)).toBe(70n);
    expect(await prisma.sale.count({ where: { buyerAccountId: buyer } })).toBe(1);
  });

  it("writes nothing at all when the buyer cannot pay", async () => {
    const buyer = await account(10n);
    const seller = await account();
    const ds = await dataset(seller, "PURCHASED", 30n, "ONE_TIME");
    const error = await appError(ledger.purchase(buyer, ds));
    expect(error.code).toBe("INSUFFICIENT_CREDITS");
    expect(error.fields).toEqual({ required: 30, balance: 10 });
    expect(await prisma.purchase.count({ where: { accountId: buyer } })).toBe(0);
    expect(await prisma.sale.count({ where: { buyerAccountId: buyer } })).toBe(0);
    expect(await entries(buyer)).toHaveLength(1);
    expect(await balance(buyer)).toBe(10n);
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(false);
  });

  it("rolls the debit back when a later write of the purchase fails", async () => {
    const buyer = await account(100n);
    const seller = await account();
    const ghost: PurchasableDataset = {
      id: randomUUID(), // no such dataset: the entitlement insert fails on its foreign key
      accountId: seller,
      access: "PURCHASED",
      purchasePrice: 30n,
      purchaseTerm: "ONE_TIME",
    };
    await failure(ledger.purchase(buyer, ghost));
    expect(await balance(buyer)).toBe(100n);
    expect(await entries(buyer)).toHaveLength(1);
    expect(await prisma.sale.count({ where: { buyerAccountId: buyer } })).toBe(0);
  });

  it("runs a monthly subscription for 30 days and renews it once it has lapsed", async () => {
    let now = new Date("2031-03-01T12:00:00.000Z");
    const clocked = new Ledger(prisma, () => now);
    const buyer = await account(100n);
    const seller = await account();
    const ds = await dataset(seller, "PURCHASED", 20n, "MONTHLY");

    const first = await clocked.purchase(buyer, ds);
    expect(first.sale.kind).toBe("SUBSCRIPTION");
    expect(first.purchase.expiresAt).toEqual(new Date(now.getTime() + SUBSCRIPTION_PERIOD_MS));
    expect(await clocked.isEntitled(buyer, ds.id)).toBe(true);

    now = new Date(now.getTime() + SUBSCRIPTION_PERIOD_MS - 1_000);
    expect(await clocked.isEntitled(buyer, ds.id)).toBe(true);
    expect((await appError(clocked.purchase(buyer, ds))).code).toBe("CONFLICT");

    now = new Date(now.getTime() + 2 * 24 * 60 * 60 * 1000);
    expect(await clocked.isEntitled(buyer, ds.id)).toBe(false);
    const renewed = await clocked.purchase(buyer, ds);
    expect(renewed.purchase.id).toBe(first.purchase.id);
    expect(renewed.purchase.expiresAt).toEqual(new Date(now.getTime() + SUBSCRIPTION_PERIOD_MS));
    expect(renewed.sale).toMatchObject({ kind: "SUBSCRIPTION", purchaseId: first.purchase.id, credits: 20n });
    expect(await clocked.isEntitled(buyer, ds.id)).toBe(true);
    expect(await balance(buyer)).toBe(60n);
    expect(await prisma.sale.count({ where: { buyerAccountId: buyer } })).toBe(2);
    await expectConsistent(buyer);
  });

  it("sees a cancelled entitlement as not entitled, and buying again reactivates it", async () => {
    const buyer = await account(100n);
    const ds = await dataset(await account(), "PURCHASED", 10n, "ONE_TIME");
    const { purchase } = await ledger.purchase(buyer, ds);
    await prisma.purchase.update({ where: { id: purchase.id }, data: { status: "CANCELLED" } });
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(false);
    const again = await ledger.purchase(buyer, ds);
    expect(again.purchase).toMatchObject({ id: purchase.id, status: "ACTIVE", expiresAt: null });
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(true);
  });

  it("returns the first result for a retried idempotency key, even concurrently", async () => {
    const buyer = await account(100n);
    const ds = await dataset(await account(), "PURCHASED", 25n, "ONE_TIME");
    const results = await Promise.all(Array.from({ length: 5 }, () => ledger.purchase(buyer, ds, "order-7")));
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.sale.id)).size).toBe(1);
    expect(new Set(results.map((r) => r.transaction.id)).size).toBe(1);
    expect(await balance(buyer)).toBe(75n);
    await expectConsistent(buyer);

    // The same key for another dataset is a conflict, not a replay.
    const other = await dataset(await account(), "PURCHASED", 5n, "ONE_TIME");
    expect((await appError(ledger.purchase(buyer, other, "order-7"))).code).toBe("CONFLICT");
    expect(await balance(buyer)).toBe(75n);
  });

  it("lets one of several concurrent purchases without a key through; the others get CONFLICT", async () => {
    const buyer = await account(100n);
    const ds = await dataset(await account(), "PURCHASED", 25n, "ONE_TIME");
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => ledger.purchase(buyer, ds)));
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    for (const o of outcomes.filter((o) => o.status === "rejected")) {
      expect((o as PromiseRejectedResult).reason).toMatchObject({ code: "CONFLICT" });
    }
    expect(await balance(buyer)).toBe(75n);
    await expectConsistent(buyer);
  });

  it("refuses datasets with nothing to buy, and the publisher's own dataset", async () => {
    const buyer = await account(100n);
    const seller = await account();
    for (const access of ["OPEN", "METERED"] as const) {
      const ds = await dataset(seller, access);
      expect((await appError(ledger.purchase(buyer, ds))).code).toBe("BAD_USER_INPUT");
    }
    const unpriced = await dataset(seller, "PURCHASED");
    expect((await appError(ledger.purchase(buyer, unpriced))).code).toBe("BAD_USER_INPUT");
    const own = await dataset(buyer, "PURCHASED", 10n, "ONE_TIME");
    expect((await appError(ledger.purchase(buyer, own))).code).toBe("CONFLICT");
    expect(await balance(buyer)).toBe(100n);
    expect(await entries(buyer)).toHaveLength(1);
  });
});

describe("recordMeteredSale", () => {
  it("records a METERED sale on its own", async () => {
    const buyer = await account();
    const seller = await account();
    const ds = await dataset(seller, "METERED");
    const sale = await ledger.recordMeteredSale({
      buyerAccountId: buyer,
      sellerAccountId: seller,
      datasetId: ds.id,
      records: 300,
      credits: 9n,
    });
    expect(sale).toMatchObject({ kind: "METERED", records: 300n, credits: 9n, purchaseId: null });
  });
});
