// Credit packs: the prices an admin sets, a buyer's orders, and the one way an order becomes
// credits (`grant`). Paid through a CheckoutProvider (Stripe) or by a manual invoice an admin
// confirms. Granting is a ledger top-up keyed by the order (credits/ledger.ts `topUp`), so however
// many webhooks, replays or confirmations arrive for an order, its credits are granted once;
// provider events are also recorded by id (payment_events) and a replayed one is not looked at again.
import { logAdminAction } from "../admin/admin-log.js";
import type { Ledger } from "../credits/ledger.js";
import { ModelReader } from "../db/model-reader.js";
import { isUniqueViolation } from "../db/prisma-errors.js";
import { badInput, conflict, notFound } from "../errors.js";
import type {
  CreditOrder,
  CreditOrderStatus,
  CreditPack,
  CreditTransaction,
  PaymentProvider,
  PrismaClient,
} from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { Logger } from "../observability/logger.js";
import type { PageArgs, PageLimits } from "../pagination.js";
import type { CheckoutProvider, PaymentNotice } from "./checkout.js";

export interface PackInput {
  code: string;
  name: string;
  credits: number;
  priceCents: number;
  currency: string;
  active: boolean;
}

export interface OrderResult {
  order: CreditOrder;
  /** True when the idempotency key was used before: the first order is returned. */
  replayed: boolean;
}

export interface GrantResult {
  order: CreditOrder;
  transaction: CreditTransaction;
  /** True when the order's credits had been granted before: nothing was added this time. */
  replayed: boolean;
}

/** What a webhook did: `applied` false for a replayed event, one that pays nothing, or an unknown order. */
export interface WebhookOutcome {
  eventId: string;
  applied: boolean;
}

const CODE = /^[a-z0-9][a-z0-9_-]{0,39}$/;
const CURRENCY = /^[a-z]{3}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_KEY_LENGTH = 200;

/** The ledger's top-up key of an order: one grant per order, whoever asks. */
export const orderTopUpKey = (orderId: string) => `credit-order:${orderId}`;

export class CreditPackService {
  readonly orders: ModelReader<CreditOrder>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly ledger: Ledger,
    /** null: Stripe is not configured; orders are paid by invoice only. */
    private readonly stripe: CheckoutProvider | null,
    limits: PageLimits,
    private readonly log: Pick<Logger, "warn">,
  ) {
    this.orders = new ModelReader(prisma.creditOrder, "creditOrder", limits);
  }

  /** The packs on sale (admins: every pack, inactive ones too), cheapest first. */
  packs(caller: Caller): Promise<CreditPack[]> {
    const admin = caller.kind === "system" || (caller.kind !== "anonymous" && caller.role === "ADMIN");
    return this.prisma.creditPack.findMany({
      where: admin ? {} : { active: true },
      orderBy: [{ priceCents: "asc" }, { code: "asc" }],
    });
  }

  /** Admin: creates or reprices a pack (orders already made keep their price), audited. */
  async setPack(caller: Caller, input: PackInput): Promise<CreditPack> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const pack = checkPack(input);
    return this.prisma.$transaction(async (tx) => {
      const before = await tx.creditPack.findUnique({ where: { code: pack.code } });
      const saved = await tx.creditPack.upsert({ where: { code: pack.code }, create: pack, update: pack });
      await logAdminAction(
        tx,
        who,
        "credit-pack.set",
        { type: "CreditPack", id: saved.id },
        {
          code: saved.code,
          credits: Number(saved.credits),
          priceCents: saved.priceCents,
          currency: saved.currency,
          active: saved.active,
          previousPriceCents: before?.priceCents ?? null,
        },
      );
      return saved;
    });
  }

  /**
   * Orders a pack for the caller's account. STRIPE: opens a Checkout Session and returns its
   * page (`checkoutUrl`); credits come with the signed webhook. INVOICE: the order waits for an
   * admin's confirmation. A retry with the same key returns the first order.
   */
  async order(
    caller: Caller,
    packCode: string,
    provider: PaymentProvider,
    idempotencyKey: string | null,
  ): Promise<OrderResult> {
    const who = authorize(caller, ["account:write"]);
    if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > MAX_KEY_LENGTH)) {
      throw badInput(`The idempotency key must be 1 to ${MAX_KEY_LENGTH} characters`, {
        argument: "idempotencyKey",
      });
    }
    if (provider === "STRIPE" && this.stripe === null) {
      throw badInput("Card payments are not set up on this server: order with provider INVOICE", {
        argument: "provider",
      });
    }
    const pack = await this.prisma.creditPack.findUnique({ where: { code: packCode } });
    if (!pack || !pack.active) throw notFound("Credit pack");
    const { order, replayed } = await this.createOrder(who.accountId, pack, provider, idempotencyKey);
    if (order.provider !== "STRIPE" || order.checkoutUrl !== null) return { order, replayed };
    // A retried order whose checkout could not be opened the first time opens it now (Stripe's
    // idempotency key is the order id: one session per order either way).
    const started = await this.stripe!.start({
      id: order.id,
      accountId: order.accountId,
      packName: pack.name,
      credits: order.credits,
      priceCents: order.priceCents,
      currency: order.currency,
    });
    const saved = await this.prisma.creditOrder.update({
      where: { id: order.id },
      data: { providerReference: started.reference, checkoutUrl: started.url },
    });
    return { order: saved, replayed };
  }

  private async createOrder(
    accountId: string,
    pack: CreditPack,
    provider: PaymentProvider,
    idempotencyKey: string | null,
  ): Promise<OrderResult> {
    const existing = async () => {
      if (idempotencyKey === null) return null;
      const found = await this.prisma.creditOrder.findUnique({
        where: { accountId_idempotencyKey: { accountId, idempotencyKey } },
      });
      if (found && (found.packId !== pack.id || found.provider !== provider)) {
        throw conflict("This idempotency key was already used for another order", {
          argument: "idempotencyKey",
        });
      }
      return found;
    };
    const first = await existing();
    if (first) return { order: first, replayed: true };
    try {
      const order = await this.prisma.creditOrder.create({
        data: {
          accountId,
          packId: pack.id,
          credits: pack.credits,
          priceCents: pack.priceCents,
          currency: pack.currency,
          provider,
          idempotencyKey,
        },
      });
      return { order, replayed: false };
    } catch (error) {
      // A concurrent retry with the same key created it first.
      const raced = isUniqueViolation(error) ? await existing() : null;
      if (raced) return { order: raced, replayed: true };
      throw error;
    }
  }

  /** The caller's orders (admins: everyone's), oldest first. */
  orderPage(caller: Caller, args: PageArgs, status: CreditOrderStatus | null) {
    authorize(caller, ["account:read"]);
    return this.orders.page(caller, args, status ? { status } : {});
  }

  /** Admin: an invoiced order was paid; its credits are granted, once (a second confirmation replays). */
  async confirmInvoice(caller: Caller, orderId: string, reference: string): Promise<GrantResult> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const note = reference.trim();
    if (note.length === 0 || note.length > 500) {
      throw badInput("reference must be 1 to 500 characters", { argument: "reference" });
    }
    const order = await this.prisma.creditOrder.findUnique({ where: { id: orderId } });
    if (!order) throw notFound("Credit order");
    if (order.provider !== "INVOICE") {
      throw conflict("This order is paid through Stripe: its credits come with Stripe's webhook", {
        provider: order.provider,
      });
    }
    const result = await this.grant(order, note);
    if (!result.replayed) {
      await this.prisma.$transaction((tx) =>
        logAdminAction(
          tx,
          who,
          "credit-order.confirm",
          { type: "CreditOrder", id: order.id },
          { credits: Number(order.credits), priceCents: order.priceCents, reference: note },
        ),
      );
    }
    return result;
  }

  /** The buyer cancels an order not paid yet. */
  async cancel(caller: Caller, orderId: string): Promise<CreditOrder> {
    const who = authorize(caller, ["account:write"]);
    const order = await this.prisma.creditOrder.findFirst({
      where: { id: orderId, ...(who.role === "ADMIN" ? {} : { accountId: who.accountId }) },
    });
    if (!order) throw notFound("Credit order");
    const cancelled = await this.prisma.creditOrder.updateMany({
      where: { id: order.id, status: "PENDING" },
      data: { status: "CANCELLED" },
    });
    if (cancelled.count === 0 && order.status === "PAID") throw conflict("This order is paid already");
    return this.prisma.creditOrder.findUniqueOrThrow({ where: { id: order.id } });
  }

  /**
   * A Stripe webhook, as received: its signature is checked over the raw body before anything of
   * it is read (BAD_USER_INPUT otherwise, nothing applied). An event seen before is acknowledged
   * and not applied again.
   */
  async stripeWebhook(rawBody: Buffer, signature: string | undefined): Promise<WebhookOutcome> {
    if (this.stripe === null) throw notFound("Stripe webhook endpoint");
    const notice = await this.stripe.verify(rawBody, signature);
    const seen = await this.prisma.paymentEvent.findUnique({
      where: { provider_eventId: { provider: "STRIPE", eventId: notice.eventId } },
    });
    if (seen) return { eventId: notice.eventId, applied: false };
    const order = await this.paidOrder(notice);
    const granted = order ? await this.grant(order, null) : null;
    await this.prisma.paymentEvent.createMany({
      data: [{ provider: "STRIPE", eventId: notice.eventId, type: notice.type, orderId: order?.id ?? null }],
      skipDuplicates: true,
    });
    return { eventId: notice.eventId, applied: granted !== null && !granted.replayed };
  }

  // The order a verified notice pays: by the session id, or by our own id echoed back when the
  // session completed before its id was saved (a very fast buyer, a crash after Stripe answered).
  private async paidOrder(notice: PaymentNotice): Promise<CreditOrder | null> {
    if (notice.paidReference === null) return null;
    const byReference = await this.prisma.creditOrder.findUnique({
      where: { providerReference: notice.paidReference },
    });
    if (byReference) return byReference;
    const byId =
      notice.orderId && UUID.test(notice.orderId)
        ? await this.prisma.creditOrder.findFirst({ where: { id: notice.orderId, provider: "STRIPE" } })
        : null;
    if (!byId) {
      this.log.warn(
        { eventId: notice.eventId, session: notice.paidReference },
        "paid Stripe session for no order",
      );
      return null;
    }
    return byId;
  }

  /** The one place an order becomes credits: a top-up keyed by the order, then the order marked PAID. */
  private async grant(order: CreditOrder, note: string | null): Promise<GrantResult> {
    const { transaction, replayed } = await this.ledger.topUp(
      order.accountId,
      order.credits,
      orderTopUpKey(order.id),
      orderTopUpKey(order.id),
    );
    await this.prisma.creditOrder.updateMany({
      where: { id: order.id, status: { not: "PAID" } },
      data: { status: "PAID", paidAt: transaction.createdAt, ...(note === null ? {} : { note }) },
    });
    const paid = await this.prisma.creditOrder.findUniqueOrThrow({ where: { id: order.id } });
    return { order: paid, transaction, replayed };
  }
}

function checkPack(input: PackInput): Omit<PackInput, "credits"> & { credits: bigint } {
  const code = input.code.trim().toLowerCase();
  if (!CODE.test(code)) {
    throw badInput("code must be 1 to 40 lowercase letters, digits, - or _", { argument: "code" });
  }
  const name = input.name.trim();
  if (name.length === 0 || name.length > 100)
    throw badInput("name must be 1 to 100 characters", { argument: "name" });
  if (!Number.isSafeInteger(input.credits) || input.credits < 1) {
    throw badInput("credits must be a whole number >= 1", { argument: "credits" });
  }
  if (!Number.isInteger(input.priceCents) || input.priceCents < 0 || input.priceCents > 99_999_999) {
    throw badInput("priceCents must be a whole number from 0 to 99999999", { argument: "priceCents" });
  }
  const currency = input.currency.trim().toLowerCase();
  if (!CURRENCY.test(currency))
    throw badInput("currency must be an ISO 4217 code such as usd", { argument: "currency" });
  return {
    code,
    name,
    credits: BigInt(input.credits),
    priceCents: input.priceCents,
    currency,
    active: input.active,
  };
}
