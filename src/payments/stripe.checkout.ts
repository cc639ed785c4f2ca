// Credit packs through Stripe Checkout, with the official `stripe` package: a Checkout Session
// per order (Stripe's own idempotency key is the order id, so a retried call makes one session),
// and webhooks read only after `stripe.webhooks.constructEvent` has checked their signature.
// Credits are granted on `checkout.session.completed` with `payment_status: paid` (and on
// `checkout.session.async_payment_succeeded` for delayed methods), never on the return URL.
// The SDK loads at the first checkout or webhook: a worker, which never takes either, is spared
// its ~6 MiB of heap (issue 13).
import type Stripe from "stripe";
import { AppError, badInput } from "../errors.js";
import {
  returnUrl,
  type CheckoutOrder,
  type CheckoutProvider,
  type CheckoutStarted,
  type PaymentNotice,
} from "./checkout.js";

export interface StripeSettings {
  secretKey: string;
  webhookSecret: string;
  /** https://api.stripe.com, or a stand-in's origin (tests). */
  apiUrl: string;
  successUrl: string;
  cancelUrl: string;
}

const PAID_EVENTS = new Set(["checkout.session.completed", "checkout.session.async_payment_succeeded"]);

export class StripeCheckout implements CheckoutProvider {
  private client: Promise<Stripe> | undefined;

  constructor(private readonly settings: StripeSettings) {}

  private stripe(): Promise<Stripe> {
    this.client ??= import("stripe").then(({ default: StripeSdk }) => {
      const api = new URL(this.settings.apiUrl);
      return new StripeSdk(this.settings.secretKey, {
        host: api.hostname,
        port: api.port || (api.protocol === "http:" ? 80 : 443),
        protocol: api.protocol === "http:" ? "http" : "https",
        telemetry: false,
        maxNetworkRetries: 2,
        timeout: 20_000,
      });
    });
    return this.client;
  }

  async start(order: CheckoutOrder): Promise<CheckoutStarted> {
    const stripe = await this.stripe();
    let session: Stripe.Checkout.Session;
    try {
      session = await stripe.checkout.sessions.create(
        {
          mode: "payment",
          client_reference_id: order.id,
          metadata: { orderId: order.id, accountId: order.accountId, credits: String(order.credits) },
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: order.currency,
                unit_amount: order.priceCents,
                product_data: { name: `${order.packName} (${order.credits} credits)` },
              },
            },
          ],
          success_url: returnUrl(this.settings.successUrl, order.id),
          cancel_url: returnUrl(this.settings.cancelUrl, order.id),
        },
        { idempotencyKey: `credit-order:${order.id}` },
      );
    } catch (error) {
      throw new AppError(
        "SERVICE_UNAVAILABLE",
        "The payment provider could not start a checkout; try again",
        {},
        { cause: error },
      );
    }
    if (!session.url) throw new Error(`Stripe returned checkout session ${session.id} without a url`);
    return { reference: session.id, url: session.url };
  }

  async verify(rawBody: Buffer, signature: string | undefined): Promise<PaymentNotice> {
    if (!signature) throw badInput("The Stripe-Signature header is missing");
    const stripe = await this.stripe();
    let event: Stripe.Event;
    try {
      event = stripe.webhooks.constructEvent(rawBody, signature, this.settings.webhookSecret);
    } catch (error) {
      throw new AppError(
        "BAD_USER_INPUT",
        "The Stripe signature does not match this body",
        {},
        { cause: error },
      );
    }
    if (!PAID_EVENTS.has(event.type))
      return { eventId: event.id, type: event.type, paidReference: null, orderId: null };
    const session = event.data.object as Stripe.Checkout.Session;
    const paid = session.payment_status === "paid" || session.payment_status === "no_payment_required";
    return {
      eventId: event.id,
      type: event.type,
      paidReference: paid ? session.id : null,
      orderId: session.client_reference_id ?? null,
    };
  }
}
