// Self-serve credits: packs an admin prices, bought through Stripe Checkout (a loopback stand-in
// for Stripe's API, test/support/stripe-standin.ts; the official `stripe` package on our side) or
// by a manual invoice an admin confirms. Credits come only with a webhook whose signature the
// package verifies: five replays grant once, a forged one grants nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  AdminLogDocument,
  BuyCreditPackDocument,
  CancelCreditOrderDocument,
  ConfirmCreditOrderDocument,
  CreditOrdersDocument,
  CreditPacksDocument,
  CreditTransactionsDocument,
  MeDocument,
  SetCreditPackDocument,
} from "../generated/graphql.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";
import { signedEvent, startStripeStandin, type StripeStandin } from "../support/stripe-standin.js";

const WEBHOOK_SECRET = "whsec_test_datahus_endpoint_secret";
/** What a new account starts with (the default plan's starting credits). */
let STARTING: number;

let stripe: StripeStandin;
let stack: TestStack;
let admin: TestAccount;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  stripe = await startStripeStandin();
  stack = await startStack({
    STRIPE_SECRET_KEY: "sk_test_standin",
    STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET,
    STRIPE_API_URL: stripe.url,
  });
  admin = await stack.admin();
  STARTING = await balance(await stack.signup("Starting Balance"));
  ok(
    await stack.graphql(
      SetCreditPackDocument,
      { input: { code: "starter", name: "Starter", credits: 1000, priceCents: 900, currency: "eur" } },
      admin.headers,
    ),
  );
});

afterAll(async () => {
  await stack?.close();
  await stripe?.close();
});

async function balance(account: TestAccount): Promise<number> {
  return ok(await stack.graphql(MeDocument, {}, account.headers)).me.account!.creditBalance;
}

async function postWebhook(body: string, signature: string | null) {
  const response = await fetch(`${stack.url}/api/v1/payments/stripe/webhook`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(signature ? { "stripe-signature": signature } : {}) },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function stripeOrder(buyer: TestAccount) {
  const { buyCreditPack } = ok(
    await stack.graphql(BuyCreditPackDocument, { packCode: "starter", provider: "STRIPE" }, buyer.headers),
  );
  const session = stripe.requests.at(-1)!;
  const sessionId = /\/(cs_test_\w+)$/.exec(buyCreditPack.order.checkoutUrl!)![1]!;
  return { order: buyCreditPack.order, session, sessionId };
}

function completed(eventId: string, sessionId: string, type = "checkout.session.completed") {
  return {
    id: eventId,
    type,
    object: { ...stripe.sessions.get(sessionId)!, status: "complete", payment_status: "paid" },
  };
}

describe("credit packs", () => {
  it("are priced by admins only, audited, and listed to anyone", async () => {
    const buyer = await stack.signup("Pack Browser");
    const input = { code: "bulk", name: "Bulk", credits: 50_000, priceCents: 30_000 };
    expect(code(await stack.graphql(SetCreditPackDocument, { input }, buyer.headers))).toBe("FORBIDDEN");
    expect(
      code(await stack.graphql(SetCreditPackDocument, { input: { ...input, credits: 0 } }, admin.headers)),
    ).toBe("BAD_USER_INPUT");
    ok(await stack.graphql(SetCreditPackDocument, { input }, admin.headers));
    const packs = ok(await stack.graphql(CreditPacksDocument, {})).creditPacks;
    expect(packs.map((p) => [p.code, p.credits, p.priceCents, p.currency])).toEqual([
      ["starter", 1000, 900, "eur"],
      ["bulk", 50_000, 30_000, "usd"],
    ]);
    const log = ok(await stack.graphql(AdminLogDocument, { action: "credit-pack.set" }, admin.headers));
    expect(log.adminLog.edges.map((e) => e.node.details)).toContainEqual(
      expect.objectContaining({ code: "bulk", priceCents: 30_000 }),
    );
  });
});

describe("buying credits through Stripe", () => {
  it("opens one Checkout Session per order with the pack's price, through the official package", async () => {
    const buyer = await stack.signup("Card Payer");
    const { order, session, sessionId } = await stripeOrder(buyer);
    expect(order).toMatchObject({ provider: "STRIPE", status: "PENDING", credits: 1000, priceCents: 900 });
    const orderId = decodeGlobalId(order.id).id;
    expect(session.path).toBe("/v1/checkout/sessions");
    expect(session.authorization).toBe("Bearer sk_test_standin");
    expect(session.idempotencyKey).toBe(`credit-order:${orderId}`);
    expect(session.form.get("mode")).toBe("payment");
    expect(session.form.get("client_reference_id")).toBe(orderId);
    expect(session.form.get("line_items[0][price_data][unit_amount]")).toBe("900");
    expect(session.form.get("line_items[0][price_data][currency]")).toBe("eur");
    expect(stripe.sessions.has(sessionId)).toBe(true);
    // Nothing is granted before Stripe says the session was paid.
    expect(await balance(buyer)).toBe(STARTING);
  });

  it("grants the credits once however often the signed webhook is replayed", async () => {
    const buyer = await stack.signup("Replay Target");
    const { order, sessionId } = await stripeOrder(buyer);
    const event = signedEvent(WEBHOOK_SECRET, completed("evt_replayed_5x", sessionId));
    // Five deliveries of one event, three of them at once.
    const answers = [
      ...(await Promise.all([0, 1, 2].map(() => postWebhook(event.body, event.signature)))),
      await postWebhook(event.body, event.signature),
      await postWebhook(event.body, event.signature),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.filter((a) => a.body.applied === true)).toHaveLength(1);
    // Another event for the same paid session (Stripe may send several) adds nothing either.
    const again = signedEvent(WEBHOOK_SECRET, completed("evt_same_session", sessionId));
    expect((await postWebhook(again.body, again.signature)).body.applied).toBe(false);

    expect(await balance(buyer)).toBe(STARTING + 1000);
    const ledger = ok(await stack.graphql(CreditTransactionsDocument, { first: 50 }, buyer.headers));
    const packTopUps = ledger.creditTransactions.edges.filter((e) => e.node.amount === 1000);
    expect(packTopUps.map((e) => e.node.kind)).toEqual(["TOP_UP"]);
    const orders = ok(await stack.graphql(CreditOrdersDocument, {}, buyer.headers)).creditOrders.edges;
    expect(orders.map((e) => [e.node.id, e.node.status])).toEqual([[order.id, "PAID"]]);
  });

  it("grants nothing for a forged, tampered, unsigned or unpaid event", async () => {
    const buyer = await stack.signup("Forgery Target");
    const { sessionId } = await stripeOrder(buyer);
    const forged = signedEvent("whsec_not_the_endpoint_secret", completed("evt_forged", sessionId));
    const forgedAnswer = await postWebhook(forged.body, forged.signature);
    expect(forgedAnswer.status).toBe(400);
    expect((forgedAnswer.body.error as { code: string }).code).toBe("BAD_USER_INPUT");
    // A genuine signature over another body: the signature covers the bytes, not the event id.
    const genuine = signedEvent(WEBHOOK_SECRET, { id: "evt_harmless", type: "customer.created", object: {} });
    const tampered = signedEvent(WEBHOOK_SECRET, completed("evt_tampered", sessionId)).body;
    expect((await postWebhook(tampered, genuine.signature)).status).toBe(400);
    expect((await postWebhook(tampered, null)).status).toBe(400);
    const unpaid = signedEvent(WEBHOOK_SECRET, {
      id: "evt_unpaid",
      type: "checkout.session.completed",
      object: { ...stripe.sessions.get(sessionId)!, status: "complete", payment_status: "unpaid" },
    });
    expect((await postWebhook(unpaid.body, unpaid.signature)).body).toMatchObject({ applied: false });
    expect(await balance(buyer)).toBe(STARTING);
    const orders = ok(await stack.graphql(CreditOrdersDocument, { status: "PENDING" }, buyer.headers));
    expect(orders.creditOrders.edges).toHaveLength(1);
  });

  it("answers a retried order with the first order and the same session", async () => {
    const buyer = await stack.signup("Double Clicker");
    const vars = { packCode: "starter", provider: "STRIPE" as const, idempotencyKey: "cart-7" };
    const first = ok(await stack.graphql(BuyCreditPackDocument, vars, buyer.headers)).buyCreditPack;
    const second = ok(await stack.graphql(BuyCreditPackDocument, vars, buyer.headers)).buyCreditPack;
    expect(second).toEqual({ ...first, replayed: true });
    expect(
      code(await stack.graphql(BuyCreditPackDocument, { ...vars, packCode: "bulk" }, buyer.headers)),
    ).toBe("CONFLICT");
    expect(
      code(await stack.graphql(BuyCreditPackDocument, { packCode: "no-such-pack" }, buyer.headers)),
    ).toBe("NOT_FOUND");
  });
});

describe("buying credits by invoice", () => {
  it("grants the credits when an admin confirms, once, audited; others cannot confirm or see the order", async () => {
    const buyer = await stack.signup("Invoice Payer");
    const other = await stack.signup("Bystander");
    const { buyCreditPack } = ok(
      await stack.graphql(BuyCreditPackDocument, { packCode: "starter", provider: "INVOICE" }, buyer.headers),
    );
    expect(buyCreditPack.order).toMatchObject({ provider: "INVOICE", status: "PENDING", checkoutUrl: null });
    const id = buyCreditPack.order.id;
    expect(code(await stack.graphql(ConfirmCreditOrderDocument, { id, reference: "x" }, buyer.headers))).toBe(
      "FORBIDDEN",
    );
    expect(ok(await stack.graphql(CreditOrdersDocument, {}, other.headers)).creditOrders.edges).toEqual([]);
    expect(code(await stack.graphql(CancelCreditOrderDocument, { id }, other.headers))).toBe("NOT_FOUND");

    const confirmed = await Promise.all(
      [1, 2].map(() =>
        stack.graphql(ConfirmCreditOrderDocument, { id, reference: "SEPA-42" }, admin.headers),
      ),
    );
    const payloads = confirmed.map((r) => ok(r).confirmCreditOrder);
    expect(payloads.map((p) => p.replayed).sort()).toEqual([false, true]);
    expect(payloads[0]!.transaction).toEqual({ kind: "TOP_UP", amount: 1000, balanceAfter: STARTING + 1000 });
    expect(payloads[0]!.order.status).toBe("PAID");
    expect(await balance(buyer)).toBe(STARTING + 1000);
    expect(code(await stack.graphql(CancelCreditOrderDocument, { id }, buyer.headers))).toBe("CONFLICT");

    const log = ok(await stack.graphql(AdminLogDocument, { action: "credit-order.confirm" }, admin.headers));
    expect(log.adminLog.edges.map((e) => e.node.targetId)).toEqual([id]);
  });
});
