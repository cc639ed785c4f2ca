// The publisher's side of every charge: one function, called inside the transaction that debits
// the buyer (ledger.ts: a metered read's settle, a purchase), so a buyer is never charged without
// the sale, the publisher's earnings entry and the platform fee, nor the other way round.
//
// Locks: the caller has already locked the buyer's accounts row; this locks the seller's
// earnings_accounts row. A transaction never locks two accounts rows, so accounts that both buy
// and sell cannot deadlock each other. The earnings row is hot for a popular dataset (every read
// of it queues on it for the length of one INSERT); that is the price of a balance that is exact
// at every entry.
import { Prisma, type Sale, type SaleKind } from "../generated/prisma/client.js";
import { feeFor } from "./fees.js";
import { uuidv7InStatement } from "../db/uuid.js";

type Db = Prisma.TransactionClient;

/** A buyer's charge, as the ledger made it. */
export interface Charge {
  kind: SaleKind;
  buyerAccountId: string;
  sellerAccountId: string;
  datasetId: string;
  /** What the buyer paid. */
  credits: bigint;
  /** Records read (METERED); 0 for purchases. */
  records?: number;
  /** The entitlement bought (PURCHASE, SUBSCRIPTION). */
  purchaseId?: string;
}

export const earningsKey = {
  sale: (saleId: string) => `sale:${saleId}`,
  refund: (saleId: string) => `refund:${saleId}`,
  payout: (payoutId: string) => `payout:${payoutId}`,
  payoutReversal: (payoutId: string) => `payout-reversal:${payoutId}`,
};

// The entry's id is made in the statement once `moved` has the seller's row lock (db/uuid.ts).
export const ENTRY_ID_AFTER_LOCK = uuidv7InStatement(Prisma.sql`now_ms.ms`);

/** The fee rate in force (basis points). Read without a lock: a change applies from the next charge. */
export async function currentFeeBasisPoints(db: Db): Promise<number> {
  const settings = await db.platformSettings.findUnique({ where: { id: 1 } });
  return settings?.feeBasisPoints ?? 0;
}

/**
 * Moves a publisher's earnings balance by `amount` (signed) and returns the balance after. The
 * upsert takes the row lock, so concurrent entries each see the balance the previous one left.
 */
export async function moveEarnings(db: Db, accountId: string, amount: bigint): Promise<bigint> {
  const rows = await db.$queryRaw<{ balance: bigint }[]>`
    INSERT INTO earnings_accounts (account_id, balance, updated_at)
    VALUES (${accountId}::uuid, ${amount}::bigint, now())
    ON CONFLICT (account_id) DO UPDATE
      SET balance = earnings_accounts.balance + EXCLUDED.balance, updated_at = now()
    RETURNING balance`;
  return BigInt(rows[0]!.balance);
}

/**
 * Records a charge for the publisher: the Sale row, and (when it cost anything) the publisher's
 * SALE earnings entry of `credits - fee` with the fee and its rate on the entry. Call it inside
 * the transaction that debited the buyer.
 */
export async function recordCharge(db: Db, charge: Charge): Promise<Sale> {
  const records = charge.records ?? 0;
  if (!Number.isSafeInteger(records) || records < 0) {
    throw new RangeError(`records must be a non-negative integer, got ${records}`);
  }
  if (typeof charge.credits !== "bigint" || charge.credits < 0n) {
    throw new RangeError(`credits must be a non-negative bigint, got ${String(charge.credits)}`);
  }
  const sale = await db.sale.create({
    data: {
      kind: charge.kind,
      datasetId: charge.datasetId,
      buyerAccountId: charge.buyerAccountId,
      sellerAccountId: charge.sellerAccountId,
      purchaseId: charge.purchaseId ?? null,
      credits: charge.credits,
      records: BigInt(records),
    },
  });
  if (charge.credits === 0n) return sale;
  const feeBasisPoints = await currentFeeBasisPoints(db);
  const fee = feeFor(charge.credits, feeBasisPoints);
  const net = charge.credits - fee;
  // One statement moves the balance and writes the entry, as the transaction's last: the seller's
  // row lock is held for it and the commit only.
  await db.$executeRaw`
    WITH moved AS (
      INSERT INTO earnings_accounts (account_id, balance, updated_at)
      VALUES (${charge.sellerAccountId}::uuid, ${net}::bigint, now())
      ON CONFLICT (account_id) DO UPDATE
        SET balance = earnings_accounts.balance + EXCLUDED.balance, updated_at = now()
      RETURNING balance)
    INSERT INTO earnings_entries (id, account_id, kind, gross, fee, fee_basis_points, amount,
      balance_after, idempotency_key, sale_id, dataset_id, buyer_account_id)
    SELECT ${ENTRY_ID_AFTER_LOCK}, ${charge.sellerAccountId}::uuid, 'SALE', ${charge.credits}::bigint,
      ${fee}::bigint, ${feeBasisPoints}::int, ${net}::bigint, moved.balance,
      ${earningsKey.sale(sale.id)}, ${sale.id}::uuid, ${charge.datasetId}::uuid,
      ${charge.buyerAccountId}::uuid
    FROM moved CROSS JOIN LATERAL
      (SELECT extract(epoch FROM clock_timestamp()) * 1000 + 0 * moved.balance AS ms) AS now_ms`;
  return sale;
}

/**
 * Reverses the publisher's side of a refunded sale: its SALE entry's net comes off the earnings
 * balance (which may then go below zero when the earnings were already paid out: the publisher
 * owes it) and the platform gives its fee back. Nothing when the sale earned nothing. Call it
 * inside the transaction that credits the buyer back.
 */
export async function reverseCharge(db: Db, sale: Pick<Sale, "id" | "sellerAccountId">): Promise<void> {
  const entry = await db.earningsEntry.findUnique({
    where: {
      accountId_idempotencyKey: {
        accountId: sale.sellerAccountId,
        idempotencyKey: earningsKey.sale(sale.id),
      },
    },
  });
  if (!entry) return;
  const balanceAfter = await moveEarnings(db, sale.sellerAccountId, -entry.amount);
  await db.earningsEntry.create({
    data: {
      accountId: sale.sellerAccountId,
      kind: "REFUND",
      gross: -entry.gross,
      fee: -entry.fee,
      feeBasisPoints: entry.feeBasisPoints,
      amount: -entry.amount,
      balanceAfter,
      idempotencyKey: earningsKey.refund(sale.id),
      saleId: sale.id,
      datasetId: entry.datasetId,
      buyerAccountId: entry.buyerAccountId,
    },
  });
}
