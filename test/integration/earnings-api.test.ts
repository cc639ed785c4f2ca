// Both sides of a sale through the API: the platform fee an admin sets, the publisher's earnings
// and ledger, a payout requested, approved twice and paid once, and an admin refund that reverses
// the buyer's charge and the publisher's earnings, every admin step in the admin log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdminLogDocument,
  ApprovePayoutDocument,
  BuyDatasetDocument,
  CreateDatasetDocument,
  EarningsDocument,
  EarningsEntriesDocument,
  MeDocument,
  PayoutsDocument,
  PublishDatasetDocument,
  RefundSaleDocument,
  RejectPayoutDocument,
  RequestPayoutDocument,
  SetPlatformFeeDocument,
} from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let admin: TestAccount;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.admin();
});

afterAll(async () => {
  await stack?.close();
});

async function purchasable(publisher: TestAccount, slug: string, price: number) {
  const created = ok(
    await stack.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: slug,
          category: "Finance",
          access: "PURCHASED",
          purchasePrice: price,
          purchaseTerm: "ONE_TIME",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "STRING", nullable: false }],
        },
      },
      publisher.headers,
    ),
  );
  ok(await stack.graphql(PublishDatasetDocument, { id: created.createDataset.id }, publisher.headers));
  return created.createDataset.id;
}

describe("a sale, a payout and a refund", () => {
  it("splits the sale, pays the payout once and reverses both sides on refund", async () => {
    const publisher = await stack.signup("Tide Tables", "PUBLISHER");
    const buyer = await stack.signup("Harbour Ops");
    expect(ok(await stack.graphql(SetPlatformFeeDocument, { basisPoints: 1000 }, admin.headers))).toEqual({
      setPlatformFee: 1000,
    });
    expect(code(await stack.graphql(SetPlatformFeeDocument, { basisPoints: 10_001 }, admin.headers))).toBe(
      "BAD_USER_INPUT",
    );
    expect(code(await stack.graphql(SetPlatformFeeDocument, { basisPoints: 0 }, publisher.headers))).toBe(
      "FORBIDDEN",
    );

    const datasetId = await purchasable(publisher, "tides_2027", 95);
    const bought = ok(await stack.graphql(BuyDatasetDocument, { datasetId }, buyer.headers));
    expect(bought.purchaseDataset.balance).toBe(5);

    expect(ok(await stack.graphql(EarningsDocument, {}, publisher.headers)).earnings).toEqual({
      balance: 86,
      gross: 95,
      fees: 9,
      pending: 0,
      paidOut: 0,
    });
    const entries = ok(await stack.graphql(EarningsEntriesDocument, { first: 10 }, publisher.headers));
    expect(entries.earningsEntries.edges.map((e) => e.node)).toEqual([
      {
        kind: "SALE",
        gross: 95,
        fee: 9,
        feeBasisPoints: 1000,
        amount: 86,
        balanceAfter: 86,
        dataset: { slug: "tides_2027" },
        sale: { id: bought.purchaseDataset.sale.id, kind: "PURCHASE" },
      },
    ]);
    // Buyers have no earnings; nobody sees another account's ledger.
    expect(code(await stack.graphql(EarningsDocument, {}, buyer.headers))).toBe("FORBIDDEN");
    expect(
      ok(await stack.graphql(EarningsEntriesDocument, { first: 10 }, buyer.headers)).earningsEntries.edges,
    ).toEqual([]);

    const requested = ok(
      await stack.graphql(RequestPayoutDocument, { amount: 60, idempotencyKey: "dec" }, publisher.headers),
    ).requestPayout;
    expect(requested).toMatchObject({ replayed: false, payout: { amount: 60, status: "REQUESTED" } });
    expect(
      code(
        await stack.graphql(RequestPayoutDocument, { amount: 27, idempotencyKey: null }, publisher.headers),
      ),
    ).toBe("INSUFFICIENT_CREDITS");
    const payoutId = requested.payout.id;
    expect(
      code(await stack.graphql(ApprovePayoutDocument, { id: payoutId, reference: "x" }, publisher.headers)),
    ).toBe("FORBIDDEN");
    const first = ok(
      await stack.graphql(ApprovePayoutDocument, { id: payoutId, reference: "SEPA-1" }, admin.headers),
    );
    const second = ok(
      await stack.graphql(ApprovePayoutDocument, { id: payoutId, reference: "SEPA-2" }, admin.headers),
    );
    expect(first.approvePayout).toEqual({ replayed: false, payout: { status: "PAID", note: "SEPA-1" } });
    expect(second.approvePayout).toEqual({ replayed: true, payout: { status: "PAID", note: "SEPA-1" } });
    expect(
      code(await stack.graphql(RejectPayoutDocument, { id: payoutId, reason: "no" }, admin.headers)),
    ).toBe("CONFLICT");
    expect(
      ok(await stack.graphql(PayoutsDocument, { status: "PAID" }, publisher.headers)).payouts.edges,
    ).toEqual([{ node: { id: payoutId, amount: 60, status: "PAID", note: "SEPA-1" } }]);
    expect(ok(await stack.graphql(EarningsDocument, {}, publisher.headers)).earnings).toMatchObject({
      balance: 26,
      paidOut: 60,
    });

    const refund = ok(
      await stack.graphql(
        RefundSaleDocument,
        { saleId: bought.purchaseDataset.sale.id, reason: "wrong year" },
        admin.headers,
      ),
    ).refundSale;
    expect(refund).toMatchObject({
      replayed: false,
      transaction: { kind: "REFUND", amount: 95, balanceAfter: 100 },
    });
    expect(refund.sale.refundedAt).not.toBeNull();
    const again = ok(
      await stack.graphql(
        RefundSaleDocument,
        { saleId: bought.purchaseDataset.sale.id, reason: "again" },
        admin.headers,
      ),
    ).refundSale;
    expect(again.replayed).toBe(true);
    expect(ok(await stack.graphql(MeDocument, {}, buyer.headers)).me.account.creditBalance).toBe(100);
    // The publisher owes what was paid out of the refunded sale.
    expect(ok(await stack.graphql(EarningsDocument, {}, publisher.headers)).earnings).toEqual({
      balance: -60,
      gross: 0,
      fees: 0,
      pending: 0,
      paidOut: 60,
    });
    const ledger = ok(await stack.graphql(EarningsEntriesDocument, { first: 10 }, publisher.headers));
    expect(
      ledger.earningsEntries.edges.map((e) => [e.node.kind, e.node.amount, e.node.balanceAfter]),
    ).toEqual([
      ["SALE", 86, 86],
      ["PAYOUT", -60, 26],
      ["REFUND", -86, -60],
    ]);

    const log = ok(await stack.graphql(AdminLogDocument, {}, admin.headers)).adminLog.edges.map(
      (e) => e.node,
    );
    expect(log.map((e) => e.action)).toEqual(["platform.fee", "payout.approve", "sale.refund"]);
    expect(log.every((e) => e.actorId === admin.userId)).toBe(true);
    expect(log[1]).toMatchObject({
      targetType: "Payout",
      targetId: payoutId,
      details: { amount: 60, reference: "SEPA-1" },
    });
    expect(log[2]).toMatchObject({
      targetId: bought.purchaseDataset.sale.id,
      details: { credits: 95, reason: "wrong year" },
    });
    expect(code(await stack.graphql(AdminLogDocument, {}, publisher.headers))).toBe("FORBIDDEN");
  });
});
