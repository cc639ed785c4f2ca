// Publishers' earnings on a real PostgreSQL (a database of its own): every charge splits exactly
// into the publisher's earnings and the platform fee, even under 1,000 concurrent reads; each
// earnings ledger sums to its balance; a payout is paid once however often it is approved; a
// refund reverses both ledgers.
import { randomInt } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Ledger } from "../../src/credits/ledger.js";
import { createPrisma, type PrismaClient } from "../../src/db/prisma.js";
import { EarningsService } from "../../src/earnings/earnings.service.js";
import { AppError } from "../../src/errors.js";
import type { DatasetAccess, PurchaseTerm } from "../../src/generated/prisma/client.js";
import { ROLE_SCOPES, type Caller, type Role } from "../../src/identity/caller.js";
import { baseConfig, freshPostgres, uniqueName } from "../support/databases.js";

let db: { url: string; drop(): Promise<void> };
let prisma: PrismaClient;
let ledger: Ledger;
let earnings: EarningsService;
let planId: string;
let admin: Caller;

beforeAll(async () => {
  db = await freshPostgres(baseConfig());
  prisma = createPrisma(db.url, 20);
  ledger = new Ledger(prisma);
  earnings = new EarningsService(prisma, ledger, { maxLimit: 100 });
  planId = (await prisma.plan.findUniqueOrThrow({ where: { code: "FREE" } })).id;
  admin = caller(await account(), "ADMIN");
});

afterAll(async () => {
  await prisma?.$disconnect();
  await db?.drop();
});

function caller(accountId: string, role: Role): Caller {
  return {
    kind: "user",
    accountId,
    userId: "0190a0a0-0000-7000-8000-000000000001",
    role,
    scopes: ROLE_SCOPES[role],
    limits: { perMinute: 1000, perHour: null, perMonth: null },
  };
}

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
) {
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
      status: "PUBLISHED",
    },
  });
}

async function setFee(basisPoints: number) {
  await earnings.setPlatformFee(admin, basisPoints);
}

/** The earnings ledger sums to the balance, and each entry's balanceAfter is the running sum. */
async function expectEarningsConsistent(accountId: string): Promise<bigint> {
  const rows = await prisma.earningsEntry.findMany({ where: { accountId }, orderBy: { id: "asc" } });
  let running = 0n;
  for (const row of rows) {
    running += row.amount;
    expect(row.balanceAfter).toBe(running);
  }
  const stored = await prisma.earningsAccount.findUnique({ where: { accountId } });
  expect(stored?.balance ?? 0n).toBe(running);
  return running;
}

/** Runs `work` over `items` with `lanes` calls in flight at once; outcomes in item order. */
async function inLanes<T, R>(
  lanes: number,
  items: T[],
  work: (item: T) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const outcomes: PromiseSettledResult<R>[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < items.length) {
        const i = next++;
        try {
          outcomes[i] = { status: "fulfilled", value: await work(items[i]!) };
        } catch (reason) {
          outcomes[i] = { status: "rejected", reason };
        }
      }
    }),
  );
  return outcomes;
}

async function appError(promise: Promise<unknown>): Promise<AppError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected the call to fail");
}

describe("metered reads under concurrency", () => {
  it("splits 1,000 concurrent reads exactly: buyer debits = publisher earnings + platform fees", async () => {
    await setFee(275); // 2.75%: most charges leave a fraction to round
    const publishers = await Promise.all([account(), account(), account()]);
    const datasets = await Promise.all(publishers.map((p) => dataset(p, "METERED")));
    const buyers = await Promise.all(Array.from({ length: 20 }, () => account(100_000n)));

    const reads = Array.from({ length: 1000 }, (_, i) => ({
      buyer: buyers[i % buyers.length]!,
      dataset: datasets[i % datasets.length]!,
      held: BigInt(randomInt(1, 200)),
      records: randomInt(1, 100),
    }));
    // 100 reads in flight at a time over a pool of 20 connections, all on the same 3 earnings
    // rows and 20 buyer rows. All 1,000 at once fails here without any earnings code too: on this
    // shared 2-core machine Prisma gives up on transactions that wait 10 s for a connection.
    const outcomes = await inLanes(100, reads, async (read) => {
      const reservation = await ledger.reserve(read.buyer, read.held, {
        reference: "records",
        datasetId: read.dataset.id,
      });
      const actual = BigInt(randomInt(0, Number(read.held) + 1));
      return ledger.settle(reservation, actual, {
        sale: { sellerAccountId: read.dataset.accountId, records: read.records },
      });
    });
    const failed = outcomes.filter((o) => o.status === "rejected");
    expect(failed.map((f) => String((f as PromiseRejectedResult).reason))).toEqual([]);

    const charged = outcomes.reduce((sum, o) => sum + (o.status === "fulfilled" ? o.value.charged : 0n), 0n);
    const { _sum: debits } = await prisma.creditTransaction.aggregate({
      where: { accountId: { in: buyers }, kind: "CHARGE" },
      _sum: { amount: true },
    });
    expect(-(debits.amount ?? 0n)).toBe(charged);

    const sales = await prisma.earningsEntry.findMany({
      where: { accountId: { in: publishers }, kind: "SALE" },
    });
    const net = sales.reduce((sum, e) => sum + e.amount, 0n);
    const fees = sales.reduce((sum, e) => sum + e.fee, 0n);
    expect(net + fees).toBe(charged);
    expect(fees).toBeGreaterThan(0n);
    for (const entry of sales) {
      expect(entry.feeBasisPoints).toBe(275);
      expect(entry.fee).toBe((entry.gross * 275n) / 10_000n);
      expect(entry.amount).toBe(entry.gross - entry.fee);
    }
    // One sale per read that cost anything, each with exactly one earnings entry.
    const paidReads = outcomes.filter((o) => o.status === "fulfilled" && o.value.charged > 0n).length;
    expect(sales).toHaveLength(paidReads);

    let earned = 0n;
    for (const publisher of publishers) earned += await expectEarningsConsistent(publisher);
    expect(earned).toBe(net);
    await setFee(0);
  }, 120_000);

  it("records the rate in force on each entry: a fee change applies from the next charge", async () => {
    const publisher = await account();
    const ds = await dataset(publisher, "METERED");
    const buyer = await account(1000n);
    const read = async (credits: bigint) =>
      ledger.settle(await ledger.reserve(buyer, credits, { reference: "r", datasetId: ds.id }), credits, {
        sale: { sellerAccountId: publisher, records: 1 },
      });
    await setFee(1000);
    await read(99n);
    await setFee(0);
    await read(50n);
    const rows = await prisma.earningsEntry.findMany({
      where: { accountId: publisher },
      orderBy: { id: "asc" },
    });
    expect(rows.map((r) => [r.gross, r.fee, r.feeBasisPoints, r.amount])).toEqual([
      [99n, 9n, 1000, 90n],
      [50n, 0n, 0, 50n],
    ]);
    const log = await prisma.adminLogEntry.findMany({
      where: { action: "platform.fee" },
      orderBy: { id: "asc" },
    });
    expect(log.at(-2)?.details).toMatchObject({ to: 1000 });
    expect(log.at(-1)?.details).toEqual({ from: 1000, to: 0 });
  });
});

describe("payouts", () => {
  async function earningPublisher(credits: bigint) {
    const publisher = await account();
    const ds = await dataset(publisher, "PURCHASED", credits, "ONE_TIME");
    const buyer = await account(credits);
    await ledger.purchase(buyer, ds);
    return { publisher, pub: caller(publisher, "PUBLISHER") };
  }

  it("pays once however often it is approved, concurrently or again later", async () => {
    const { publisher, pub } = await earningPublisher(500n);
    const { payout } = await earnings.requestPayout(pub, 300, "p-1");
    expect(payout.status).toBe("REQUESTED");
    expect((await earnings.summary(pub)).balance).toBe(200n);

    const approvals = await Promise.all(
      Array.from({ length: 5 }, () => earnings.approvePayout(admin, payout.id, "wire 2026-12-04")),
    );
    expect(approvals.filter((a) => !a.replayed)).toHaveLength(1);
    for (const a of approvals) expect(a.payout).toMatchObject({ status: "PAID", note: "wire 2026-12-04" });
    const again = await earnings.approvePayout(admin, payout.id, "another wire");
    expect(again).toMatchObject({ replayed: true, payout: { status: "PAID", note: "wire 2026-12-04" } });

    // Paid once: one PAYOUT entry, one admin log line, the balance moved once.
    const entries = await prisma.earningsEntry.findMany({ where: { accountId: publisher, kind: "PAYOUT" } });
    expect(entries.map((e) => e.amount)).toEqual([-300n]);
    expect(
      await prisma.adminLogEntry.count({ where: { action: "payout.approve", targetId: payout.id } }),
    ).toBe(1);
    expect(await earnings.summary(pub)).toMatchObject({ balance: 200n, pending: 0n, paidOut: 300n });
    expect(await expectEarningsConsistent(publisher)).toBe(200n);

    // Final: a paid payout cannot be rejected.
    expect((await appError(earnings.rejectPayout(admin, payout.id, "too late"))).code).toBe("CONFLICT");
  });

  it("gives a rejected payout's amount back once, and never pays it", async () => {
    const { publisher, pub } = await earningPublisher(100n);
    const { payout } = await earnings.requestPayout(pub, 100, null);
    expect((await appError(earnings.requestPayout(pub, 1, null))).code).toBe("INSUFFICIENT_CREDITS");
    const rejections = await Promise.all([
      earnings.rejectPayout(admin, payout.id, "bank details missing"),
      earnings.rejectPayout(admin, payout.id, "bank details missing"),
    ]);
    expect(rejections.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await appError(earnings.approvePayout(admin, payout.id, "wire"))).code).toBe("CONFLICT");
    expect(await expectEarningsConsistent(publisher)).toBe(100n);
    expect(await earnings.summary(pub)).toMatchObject({ balance: 100n, pending: 0n, paidOut: 0n });
  });

  it("applies a retried request once, and refuses other callers", async () => {
    const { pub } = await earningPublisher(100n);
    const [a, b] = await Promise.all([
      earnings.requestPayout(pub, 40, "same"),
      earnings.requestPayout(pub, 40, "same"),
    ]);
    expect(a.payout.id).toBe(b.payout.id);
    expect([a.replayed, b.replayed].sort()).toEqual([false, true]);
    expect((await appError(earnings.requestPayout(pub, 41, "same"))).code).toBe("CONFLICT");
    expect((await earnings.summary(pub)).balance).toBe(60n);
    const buyer = caller(await account(), "BUYER");
    expect((await appError(earnings.requestPayout(buyer, 1, null))).code).toBe("FORBIDDEN");
    expect((await appError(earnings.approvePayout(pub, a.payout.id, "self"))).code).toBe("FORBIDDEN");
  });
});

describe("refunds", () => {
  it("reverse both ledgers and end the entitlement, once", async () => {
    await setFee(500);
    const publisher = await account();
    const ds = await dataset(publisher, "PURCHASED", 333n, "MONTHLY");
    const buyer = await account(1000n);
    const { sale } = await ledger.purchase(buyer, ds);
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(true);
    expect(await expectEarningsConsistent(publisher)).toBe(333n - 16n);

    const refunds = await Promise.all([
      earnings.refundSale(admin, sale.id, "dataset was empty"),
      earnings.refundSale(admin, sale.id, "dataset was empty"),
    ]);
    expect(refunds.filter((r) => !r.replayed)).toHaveLength(1);
    for (const r of refunds) expect(r.transaction).toMatchObject({ kind: "REFUND", amount: 333n });

    expect(await ledger.balance(buyer)).toBe(1000n);
    expect(await ledger.isEntitled(buyer, ds.id)).toBe(false);
    expect(await expectEarningsConsistent(publisher)).toBe(0n);
    const reversal = await prisma.earningsEntry.findFirstOrThrow({
      where: { accountId: publisher, kind: "REFUND" },
    });
    expect(reversal).toMatchObject({ gross: -333n, fee: -16n, amount: -317n, saleId: sale.id });
    const pub = caller(publisher, "PUBLISHER");
    expect(await earnings.summary(pub)).toMatchObject({ gross: 0n, fees: 0n, balance: 0n });
    expect((await prisma.sale.findUniqueOrThrow({ where: { id: sale.id } })).refundedAt).not.toBeNull();
    expect(await prisma.adminLogEntry.count({ where: { action: "sale.refund", targetId: sale.id } })).toBe(1);
    // The buyer's ledger still sums to its balance.
    const { _sum } = await prisma.creditTransaction.aggregate({
      where: { accountId: buyer },
      _sum: { amount: true },
    });
    expect(_sum.amount).toBe(1000n);
    await setFee(0);
  });

  it("of earnings already paid out leaves the publisher owing, and refuses further payouts", async () => {
    const publisher = await account();
    const ds = await dataset(publisher, "METERED");
    const buyer = await account(100n);
    const reservation = await ledger.reserve(buyer, 80n, { reference: "r", datasetId: ds.id });
    await ledger.settle(reservation, 80n, { sale: { sellerAccountId: publisher, records: 10 } });
    const pub = caller(publisher, "PUBLISHER");
    const { payout } = await earnings.requestPayout(pub, 80, null);
    await earnings.approvePayout(admin, payout.id, "wire");
    const sale = await prisma.sale.findFirstOrThrow({ where: { sellerAccountId: publisher } });
    await earnings.refundSale(admin, sale.id, "wrong data");
    expect(await ledger.balance(buyer)).toBe(100n);
    expect(await expectEarningsConsistent(publisher)).toBe(-80n);
    expect((await appError(earnings.requestPayout(pub, 1, null))).code).toBe("INSUFFICIENT_CREDITS");
  });
});
