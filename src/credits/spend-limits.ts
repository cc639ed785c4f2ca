// Per-key spend limits: credits an API key may spend per UTC day and per UTC calendar month.
// Counted in api_key_spend inside the transaction that debits the account (ledger.ts), with one
// conditional upsert per limited period, so racing reads can never overrun a limit: each waits
// for the counter row's lock, then sees the spend the previous one left. A read's hold counts in
// full while it runs; settling gives back what was not charged, to the period the hold was made in.
import { AppError } from "../errors.js";
import type { Prisma, SpendPeriod } from "../generated/prisma/client.js";

type Db = Prisma.TransactionClient;

/** The periods a spend at `at` counts in, as UTC dates (YYYY-MM-DD). */
export function spendPeriods(at: Date): Record<SpendPeriod, string> {
  const day = at.toISOString().slice(0, 10);
  return { DAY: day, MONTH: `${day.slice(0, 7)}-01` };
}

export function spendLimitExceeded(
  period: SpendPeriod,
  limit: bigint,
  spent: bigint,
  required: bigint,
): AppError {
  const per = period === "DAY" ? "day" : "month";
  return new AppError(
    "SPEND_LIMIT_EXCEEDED",
    `This API key may spend ${limit} credits a ${per}: ${spent} spent, this needs ${required}`,
    { period, limit: Number(limit), spent: Number(spent), required: Number(required) },
  );
}

/**
 * Counts `amount` against the key's limits, or throws SPEND_LIMIT_EXCEEDED (the caller's
 * transaction then writes nothing). A key without limits costs one read of its row.
 */
export async function holdSpend(db: Db, apiKeyId: string, amount: bigint, at: Date): Promise<void> {
  if (amount === 0n) return;
  const [key] = await db.$queryRaw<{ daily: bigint | null; monthly: bigint | null }[]>`
    SELECT daily_spend_limit AS daily, monthly_spend_limit AS monthly FROM api_keys WHERE id = ${apiKeyId}::uuid`;
  if (!key || (key.daily === null && key.monthly === null)) return;
  const periods = spendPeriods(at);
  const limits: [SpendPeriod, bigint | null][] = [
    ["DAY", key.daily === null ? null : BigInt(key.daily)],
    ["MONTH", key.monthly === null ? null : BigInt(key.monthly)],
  ];
  // Both periods are counted once the key has any limit, so its spend shows whole.
  for (const [period, limit] of limits) {
    if (limit !== null && amount > limit) {
      throw spendLimitExceeded(period, limit, await spent(db, apiKeyId, period, periods[period]), amount);
    }
    const rows = await db.$queryRaw<{ spent: bigint }[]>`
      INSERT INTO api_key_spend (api_key_id, period, period_start, spent)
      VALUES (${apiKeyId}::uuid, ${period}::spend_period, ${periods[period]}::date, ${amount}::bigint)
      ON CONFLICT (api_key_id, period, period_start) DO UPDATE
        SET spent = api_key_spend.spent + EXCLUDED.spent
        WHERE ${limit}::bigint IS NULL OR api_key_spend.spent + EXCLUDED.spent <= ${limit}::bigint
      RETURNING spent`;
    if (!rows[0]) {
      throw spendLimitExceeded(period, limit!, await spent(db, apiKeyId, period, periods[period]), amount);
    }
  }
}

/** Gives back `amount` of a hold made at `heldAt` (the part of a read that was not charged). */
export async function returnSpend(db: Db, apiKeyId: string, amount: bigint, heldAt: Date): Promise<void> {
  if (amount === 0n) return;
  const periods = spendPeriods(heldAt);
  await db.$executeRaw`
    UPDATE api_key_spend SET spent = greatest(spent - ${amount}::bigint, 0)
    WHERE api_key_id = ${apiKeyId}::uuid
      AND ((period = 'DAY' AND period_start = ${periods.DAY}::date)
        OR (period = 'MONTH' AND period_start = ${periods.MONTH}::date))`;
}

/** What the key has spent in the period (0 when nothing was counted). */
export async function spent(
  db: Db,
  apiKeyId: string,
  period: SpendPeriod,
  periodStart: string,
): Promise<bigint> {
  const rows = await db.$queryRaw<{ spent: bigint }[]>`
    SELECT spent FROM api_key_spend
    WHERE api_key_id = ${apiKeyId}::uuid AND period = ${period}::spend_period AND period_start = ${periodStart}::date`;
  return rows[0] ? BigInt(rows[0].spent) : 0n;
}
