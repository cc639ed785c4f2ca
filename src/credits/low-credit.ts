// credits.low: told once each time a debit takes a balance below the threshold its account set.
// The flag on the account makes "once" hold under concurrency: the one UPDATE that flips it
// publishes; a credit that lifts the balance back clears it for the next crossing.
import { newEvent, type EventBus } from "../events/events.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { Logger } from "../observability/logger.js";

/** What the ledger tells after it moved credits (outside its transaction, once committed). */
export interface BalanceWatch {
  afterDebit(accountId: string): Promise<void>;
  afterCredit(accountId: string): Promise<void>;
}

export const noBalanceWatch: BalanceWatch = {
  afterDebit: async () => undefined,
  afterCredit: async () => undefined,
};

export class LowCreditWatch implements BalanceWatch {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: EventBus,
    private readonly log: Pick<Logger, "error">,
  ) {}

  async afterDebit(accountId: string): Promise<void> {
    // Telling is never allowed to fail the debit that has already been committed.
    try {
      const crossed = await this.prisma.$queryRaw<{ credit_balance: bigint; low_credit_threshold: bigint }[]>`
        UPDATE accounts SET low_credit_notified = true
        WHERE id = ${accountId}::uuid AND NOT low_credit_notified
          AND low_credit_threshold IS NOT NULL AND credit_balance < low_credit_threshold
        RETURNING credit_balance, low_credit_threshold`;
      const row = crossed[0];
      if (!row) return;
      await this.events.publish(
        newEvent("credits.low", {
          accountId,
          balance: String(row.credit_balance),
          threshold: String(row.low_credit_threshold),
        }),
      );
    } catch (err) {
      this.log.error({ err, accountId }, "could not check the low-credit threshold");
    }
  }

  async afterCredit(accountId: string): Promise<void> {
    try {
      await this.rearm(accountId);
    } catch (err) {
      this.log.error({ err, accountId }, "could not re-arm the low-credit threshold");
    }
  }

  /** Clears the flag when the balance is at or above the threshold (or there is none). */
  private async rearm(accountId: string): Promise<void> {
    await this.prisma.$executeRaw`
      UPDATE accounts SET low_credit_notified = false
      WHERE id = ${accountId}::uuid AND low_credit_notified
        AND (low_credit_threshold IS NULL OR credit_balance >= low_credit_threshold)`;
  }
}
