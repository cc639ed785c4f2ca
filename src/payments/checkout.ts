// How a buyer pays for a credit pack, behind one interface: the Stripe implementation
// (stripe.checkout.ts) and the manual invoice an admin confirms (no provider call at all). The
// order's rules (prices, idempotency, granting credits once) live in packs.service.ts.

/** What a provider needs to know to take a payment for an order. */
export interface CheckoutOrder {
  id: string;
  accountId: string;
  packName: string;
  credits: bigint;
  priceCents: number;
  currency: string;
}

/** Where the buyer goes to pay, and the provider's name for that payment. */
export interface CheckoutStarted {
  /** The provider's id of the payment (Stripe: the Checkout Session id). */
  reference: string;
  url: string;
}

/** A provider's verified word that an order was paid. */
export interface PaymentNotice {
  /** The provider's event id: each is applied once. */
  eventId: string;
  type: string;
  /** The provider reference of the order paid; null for events that pay nothing. */
  paidReference: string | null;
  /** Our order id as the provider echoes it back (client_reference_id), when it does. */
  orderId: string | null;
}

export interface CheckoutProvider {
  /** Opens a payment for the order; called at most once per order (idempotent at the provider too). */
  start(order: CheckoutOrder): Promise<CheckoutStarted>;
  /**
   * Verifies a webhook's signature over its raw body and reads it. Throws BAD_USER_INPUT for a
   * body the provider did not sign: nothing of it is looked at.
   */
  verify(rawBody: Buffer, signature: string | undefined): Promise<PaymentNotice>;
}

/** `{ORDER_ID}` in a return URL becomes the order's id. */
export function returnUrl(template: string, orderId: string): string {
  return template.replaceAll("{ORDER_ID}", encodeURIComponent(orderId));
}
