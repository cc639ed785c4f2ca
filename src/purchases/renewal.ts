// MONTHLY purchases renew themselves from credits: a job (purchase.jobs.ts) asks for the purchases
// whose term ends within the lead time and renews each for one more term, from the end of the
// current one. Every worker may run it at once: a term is renewed once, because
//   - the renewal's UPDATE only matches the purchase while it still ends where this worker saw it
//     end (`expires_at = termEnd`); a second worker waits for the first's row lock, then matches
//     nothing and rolls its debit back;
//   - its PURCHASE ledger row carries the key `renewal:<purchase>:<term end>`, unique per account,
//     as a backstop.
// A renewal the balance cannot pay is told once per term (purchase.renewal_failed, to the buyer's
// webhooks) and tried again at every tick until the term ends; then the purchase lapses (EXPIRED).
// A cancelled purchase (autoRenew false) simply lapses at its term end.
import { debit, SUBSCRIPTION_PERIOD_MS } from "../credits/ledger.js";
import type { BalanceWatch } from "../credits/low-credit.js";
import { recordCharge } from "../earnings/earnings.js";
import { AppError } from "../errors.js";
import { newEvent, type EventBus } from "../events/events.js";
import type { PrismaClient } from "../generated/prisma/client.js";

export interface RenewalTick {
  renewed: number;
  failed: number;
  lapsed: number;
}

interface Due {
  id: string;
  account_id: string;
  dataset_id: string;
  seller_id: string;
  price: bigint;
  expires_at: Date;
}

type Outcome = "renewed" | "failed" | "skipped";

/** Thrown inside a renewal's transaction to roll it back: another worker renewed this term. */
class AlreadyRenewed extends Error {}

const TX_OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;
const BATCH = 500;

export const renewalKey = (purchaseId: string, termEnd: Date) =>
  `renewal:${purchaseId}:${termEnd.toISOString()}`;

export class PurchaseRenewals {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: EventBus,
    private readonly watch: BalanceWatch,
    /** How long before its term ends a purchase is renewed. */
    private readonly leadMs: number,
  ) {}

  /** One pass: renews what is due by `now + lead`, then lapses what ended unrenewed. */
  async tick(now: Date): Promise<RenewalTick> {
    const result: RenewalTick = { renewed: 0, failed: 0, lapsed: 0 };
    for (const due of await this.due(new Date(now.getTime() + this.leadMs))) {
      const outcome = await this.renew(due);
      if (outcome !== "skipped") result[outcome]++;
    }
    result.lapsed = await this.prisma.purchase
      .updateMany({
        where: { status: "ACTIVE", expiresAt: { lte: now } },
        data: { status: "EXPIRED" },
      })
      .then((r) => r.count);
    return result;
  }

  // Only what can still be sold monthly: a dataset unpublished or repriced to another access
  // stops renewing and its purchases lapse at their term end.
  private due(horizon: Date): Promise<Due[]> {
    return this.prisma.$queryRaw<Due[]>`
      SELECT p.id, p.account_id, p.dataset_id, d.account_id AS seller_id, d.purchase_price AS price,
             p.expires_at
      FROM purchases p JOIN datasets d ON d.id = p.dataset_id
      WHERE p.status = 'ACTIVE' AND p.auto_renew AND p.expires_at IS NOT NULL AND p.expires_at <= ${horizon}
        AND d.access = 'PURCHASED' AND d.purchase_term = 'MONTHLY' AND d.status = 'PUBLISHED'
        AND d.purchase_price IS NOT NULL AND d.account_id <> p.account_id
      ORDER BY p.expires_at, p.id
      LIMIT ${BATCH}`;
  }

  /** Renews one term: debit, entitlement, sale and earnings, ledger row, in one transaction. */
  async renew(due: Due): Promise<Outcome> {
    const price = BigInt(due.price);
    const termEnd = due.expires_at;
    try {
      await this.prisma.$transaction(async (tx) => {
        // The buyer's row lock first, as every charge takes it (no lock-order cycle with purchases).
        const balance = await debit(tx, due.account_id, price);
        const moved = await tx.purchase.updateMany({
          where: { id: due.id, status: "ACTIVE", autoRenew: true, expiresAt: termEnd },
          data: { expiresAt: new Date(termEnd.getTime() + SUBSCRIPTION_PERIOD_MS), renewalFailedFor: null },
        });
        if (moved.count === 0) throw new AlreadyRenewed();
        const sale = await recordCharge(tx, {
          kind: "SUBSCRIPTION",
          buyerAccountId: due.account_id,
          sellerAccountId: due.seller_id,
          datasetId: due.dataset_id,
          purchaseId: due.id,
          credits: price,
        });
        await tx.creditTransaction.create({
          data: {
            accountId: due.account_id,
            kind: "PURCHASE",
            amount: -price,
            balanceAfter: balance,
            idempotencyKey: renewalKey(due.id, termEnd),
            reference: `sale:${sale.id}`,
            datasetId: due.dataset_id,
          },
        });
      }, TX_OPTIONS);
    } catch (error) {
      if (error instanceof AlreadyRenewed) return "skipped";
      if (error instanceof AppError && error.code === "INSUFFICIENT_CREDITS") {
        return (await this.tellFailure(due, error)) ? "failed" : "skipped";
      }
      throw error;
    }
    await this.watch.afterDebit(due.account_id);
    return "renewed";
  }

  // Once per term: the flag moves only while the purchase still ends where it did.
  private async tellFailure(due: Due, error: AppError): Promise<boolean> {
    const marked = await this.prisma.purchase.updateMany({
      where: {
        id: due.id,
        expiresAt: due.expires_at,
        OR: [{ renewalFailedFor: null }, { renewalFailedFor: { not: due.expires_at } }],
      },
      data: { renewalFailedFor: due.expires_at },
    });
    if (marked.count === 0) return false;
    await this.events.publish(
      newEvent("purchase.renewal_failed", {
        accountId: due.account_id,
        purchaseId: due.id,
        datasetId: due.dataset_id,
        required: String(BigInt(due.price)),
        balance: String(error.fields.balance ?? ""),
        expiresAt: due.expires_at.toISOString(),
      }),
    );
    return true;
  }
}
