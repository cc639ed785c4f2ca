// The only code that moves credits. Every change to accounts.credit_balance happens in the same
// PostgreSQL transaction as the ledger rows that explain it, so per account the ledger always sums
// to the balance (docs/architecture.md §5).
//
// Debits are one conditional UPDATE (`... WHERE credit_balance >= n`): under any concurrency the
// row lock makes each debit see the balance the previous one left, and a debit that does not fit
// matches no row. The CHECK (credit_balance >= 0) constraint is only the backstop.
//
// Ledger scheme for metered reads (one reference per read):
//   reserve  RESERVATION  -reserved   hold the most the read can cost, before reading
//   settle   RELEASE      +reserved   the hold is given back whole...
//            CHARGE       -actual     ...and the read is charged what it really cost
//   release  RELEASE      +reserved   the read failed: nothing is charged
// So every read leaves exactly one CHARGE row with its real price (cost reports need no pairing),
// and per reservation RESERVATION + RELEASE sum to zero: a RESERVATION without its RELEASE is a hold
// still open (a read in flight, or a process that died mid-read). The RELEASE row carries the
// idempotency key `release:<reservation id>`, so the unique (account, key) index makes it
// impossible to give a hold back twice (a settle after a release, a double settle): CONFLICT.
//
// Sellers: every charge that pays a publisher (a metered read's settle, a purchase) calls
// earnings/earnings.ts `recordCharge` inside its transaction: the Sale row, the publisher's
// earnings entry and the platform fee are written with the buyer's debit or not at all. The
// publisher's earnings are their own ledger (earnings_entries), not this one.
import { noBalanceWatch, type BalanceWatch } from "./low-credit.js";
import { AppError, badInput, conflict, notFound } from "../errors.js";
import { isUniqueViolation, translatePrismaError } from "../db/prisma-errors.js";
import { unavailableStore } from "../db/store-unavailable.js";

/** How often settles and releases cut short by a PostgreSQL outage are retried. */
const OWED_RETRY_MS = 1000;
/** Tries of one owed settle or release that fail other than by an outage before it is left. */
const OWED_MAX_TRIES = 60;
import { ENTRY_ID_AFTER_LOCK, recordCharge, reverseCharge } from "../earnings/earnings.js";
import { uuidv7, uuidv7InStatement } from "../db/uuid.js";
import { holdSpend, returnSpend } from "./spend-limits.js";
import {
  Prisma,
  type CreditTransaction,
  type DatasetAccess,
  type PrismaClient,
  type Purchase,
  type PurchaseTerm,
  type Sale,
} from "../generated/prisma/client.js";

type Db = Prisma.TransactionClient;

/** A hold on credits for one read; settle or release it exactly once. */
export interface Reservation {
  /** The RESERVATION ledger row; null for a zero reservation, which holds and writes nothing. */
  readonly id: string | null;
  readonly accountId: string;
  readonly amount: bigint;
  readonly reference: string;
  readonly datasetId: string | null;
  /** The API key whose spend the hold counts against (spend-limits.ts), if any. */
  readonly apiKeyId?: string | null;
}

export interface ReservationMeta {
  /** What the hold is for: request id, operation name, export id. */
  reference: string;
  datasetId?: string;
  /** The API key making the read: the hold counts against its spend limits (spend-limits.ts). */
  apiKeyId?: string | null;
}

export interface SettleMeta {
  /** Overrides the reservation's reference on the CHARGE row. */
  reference?: string;
  /**
   * Records the METERED sale in the same transaction as the charge (needs the reservation's
   * datasetId), so a charge can never exist without the publisher's sale or the other way round.
   * A read that returned no records and cost nothing makes no sale.
   */
  sale?: { sellerAccountId: string; records: number };
}

export interface MeteredSaleInput {
  buyerAccountId: string;
  sellerAccountId: string;
  datasetId: string;
  records: number;
  credits: bigint;
}

/** The fields of a dataset that decide what buying it means. */
export interface PurchasableDataset {
  id: string;
  /** The publisher (seller). */
  accountId: string;
  access: DatasetAccess;
  purchasePrice: bigint | null;
  purchaseTerm: PurchaseTerm | null;
}

export interface PurchaseResult {
  /** The entitlement, as it is now. */
  purchase: Purchase;
  sale: Sale;
  /** The PURCHASE ledger row. */
  transaction: CreditTransaction;
  /** True when the idempotency key was seen before and nothing was applied this time. */
  replayed: boolean;
}

export interface RefundResult {
  sale: Sale;
  /** The buyer's REFUND ledger row. */
  transaction: CreditTransaction;
  /** True when the sale was refunded before and nothing was applied this time. */
  replayed: boolean;
}

export interface TopUpResult {
  transaction: CreditTransaction;
  /** True when the idempotency key was seen before and nothing was applied this time. */
  replayed: boolean;
}

/** A MONTHLY purchase runs for 30 days from the moment it is bought (every period the same length). */
export const SUBSCRIPTION_PERIOD_MS = 30 * 24 * 60 * 60 * 1000;

// Client-chosen keys are namespaced by operation so that a key can never collide with another
// operation's key, nor with the keys the ledger writes itself (release:/charge:).
const key = {
  topUp: (k: string) => `top-up:${k}`,
  purchase: (k: string) => `purchase:${k}`,
  release: (reservationId: string) => `release:${reservationId}`,
  refund: (saleId: string) => `refund:${saleId}`,
  charge: (reservationId: string) => `charge:${reservationId}`,
};

const MAX_KEY_LENGTH = 200;

// Balances are shown to clients as numbers (and error fields are numbers): keep single top-ups
// where every balance stays exact.
const MAX_TOP_UP = BigInt(Number.MAX_SAFE_INTEGER);

// Every account's writes queue on its row lock, so under a burst a transaction may wait for a
// connection and then for the lock; Prisma's defaults (2 s / 5 s) turn a busy moment into errors.
const TX_OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;

export function insufficientCredits(required: bigint, balance: bigint): AppError {
  return new AppError(
    "INSUFFICIENT_CREDITS",
    `Not enough credits: this costs ${required}, the balance is ${balance}`,
    { required: Number(required), balance: Number(balance) },
  );
}

function assertAmount(name: string, amount: bigint): void {
  if (typeof amount !== "bigint" || amount < 0n) {
    throw new RangeError(`${name} must be a non-negative bigint, got ${String(amount)}`);
  }
}

function checkIdempotencyKey(k: string): string {
  if (typeof k !== "string" || k.length === 0 || k.length > MAX_KEY_LENGTH) {
    throw badInput(`The idempotency key must be 1 to ${MAX_KEY_LENGTH} characters`, {
      field: "idempotencyKey",
    });
  }
  return k;
}

/** Active and not expired at `now`. */
export function isActiveEntitlement(purchase: Pick<Purchase, "status" | "expiresAt">, now: Date): boolean {
  return (
    purchase.status === "ACTIVE" &&
    (purchase.expiresAt === null || purchase.expiresAt.getTime() > now.getTime())
  );
}

async function lockAccount(db: Db, accountId: string): Promise<bigint> {
  const rows = await db.$queryRaw<{ credit_balance: bigint }[]>`
    SELECT credit_balance FROM accounts WHERE id = ${accountId}::uuid FOR UPDATE`;
  if (!rows[0]) throw notFound("Account");
  return BigInt(rows[0].credit_balance);
}

/**
 * The conditional debit; returns the new balance, or throws INSUFFICIENT_CREDITS having changed
 * nothing. Exported for charges written beside the Ledger class (purchases/renewal.ts).
 */
export async function debit(db: Db, accountId: string, amount: bigint): Promise<bigint> {
  const rows = await db.$queryRaw<{ credit_balance: bigint }[]>`
    UPDATE accounts SET credit_balance = credit_balance - ${amount}::bigint
    WHERE id = ${accountId}::uuid AND credit_balance >= ${amount}::bigint
    RETURNING credit_balance`;
  if (rows[0]) return BigInt(rows[0].credit_balance);
  const account = await db.account.findUnique({ where: { id: accountId }, select: { creditBalance: true } });
  if (!account) throw notFound("Account");
  throw insufficientCredits(amount, account.creditBalance);
}

async function credit(db: Db, accountId: string, amount: bigint): Promise<bigint> {
  const rows = await db.$queryRaw<{ credit_balance: bigint }[]>`
    UPDATE accounts SET credit_balance = credit_balance + ${amount}::bigint
    WHERE id = ${accountId}::uuid
    RETURNING credit_balance`;
  if (!rows[0]) throw notFound("Account");
  return BigInt(rows[0].credit_balance);
}

interface SettledRow {
  balance: bigint;
  threshold: bigint | null;
  notified: boolean;
}

/**
 * A settle as one statement. Each part reads `hold` (the RESERVATION row as the ledger recorded
 * it, so a stale or hand-made Reservation cannot create credits) and `credited` (the buyer's row,
 * updated and locked), so nothing is written unless the hold exists and covers `actual`:
 *
 * - the buyer gets `hold - actual` back; the RELEASE (+hold, keyed `release:<id>`, which makes a
 *   second settle or a settle after a release fail as a unique violation) and CHARGE (-actual) rows;
 * - the key's spend counters of the period the hold was made in get back what was not charged
 *   (the UTC day and month, as spend-limits.ts `spendPeriods`);
 * - the publisher's side, as earnings.ts `recordCharge`: the Sale, and for a charge above zero the
 *   earnings balance and its SALE entry, net of the platform fee rounded down (fees.ts `feeFor`).
 */
function settleStatement(reservation: Reservation, id: string, actual: bigint, meta: SettleMeta): Prisma.Sql {
  const sale = meta.sale && (meta.sale.records > 0 || actual > 0n) ? meta.sale : null;
  const now = Date.now();
  return Prisma.sql`
    WITH hold AS (
      SELECT account_id, -amount AS amount, reference, dataset_id, api_key_id, created_at
      FROM credit_transactions
      WHERE id = ${id}::uuid AND kind = 'RESERVATION' AND account_id = ${reservation.accountId}::uuid),
    credited AS (
      UPDATE accounts a SET credit_balance = a.credit_balance + (hold.amount - ${actual}::bigint)
      FROM hold WHERE a.id = hold.account_id AND hold.amount >= ${actual}::bigint
      RETURNING a.credit_balance, a.low_credit_threshold, a.low_credit_notified),
    clock AS (SELECT extract(epoch FROM clock_timestamp()) * 1000 + 0 * credit_balance AS ms FROM credited),
    rows AS (
      INSERT INTO credit_transactions
        (id, account_id, kind, amount, balance_after, idempotency_key, reference, dataset_id, api_key_id)
      SELECT ${uuidv7InStatement(Prisma.sql`clock.ms`)}, hold.account_id, 'RELEASE'::credit_transaction_kind, hold.amount,
        credited.credit_balance + ${actual}::bigint, ${key.release(id)}, hold.reference, hold.dataset_id,
        hold.api_key_id
      FROM hold, credited, clock
      UNION ALL
      -- One tick of the id's fraction later: the CHARGE sorts after its RELEASE.
      SELECT ${uuidv7InStatement(Prisma.sql`(clock.ms + 1.0 / 4096)`)}, hold.account_id, 'CHARGE'::credit_transaction_kind, ${-actual}::bigint, credited.credit_balance,
        ${key.charge(id)}, coalesce(${meta.reference ?? null}::text, hold.reference), hold.dataset_id,
        hold.api_key_id
      FROM hold, credited, clock),
    spend AS (
      UPDATE api_key_spend s SET spent = greatest(s.spent - (hold.amount - ${actual}::bigint), 0)
      FROM hold, credited
      WHERE s.api_key_id = hold.api_key_id AND hold.amount > ${actual}::bigint
        AND ((s.period = 'DAY' AND s.period_start = (hold.created_at AT TIME ZONE 'UTC')::date)
          OR (s.period = 'MONTH'
            AND s.period_start = date_trunc('month', hold.created_at AT TIME ZONE 'UTC')::date))),
    sale AS (
      INSERT INTO sales (id, dataset_id, buyer_account_id, seller_account_id, kind, credits, records)
      SELECT ${uuidv7(now)}::uuid, hold.dataset_id, hold.account_id, ${sale?.sellerAccountId ?? null}::uuid,
        'METERED', ${actual}::bigint, ${BigInt(sale?.records ?? 0)}::bigint
      FROM hold, credited WHERE ${sale !== null} AND hold.dataset_id IS NOT NULL
      RETURNING id, dataset_id, buyer_account_id, seller_account_id, credits),
    fee AS (
      SELECT sale.*, coalesce((SELECT fee_basis_points FROM platform_settings WHERE id = 1), 0) AS bp
      FROM sale WHERE sale.credits > 0),
    split AS (SELECT fee.*, (fee.credits * fee.bp) / 10000 AS fee FROM fee),
    moved AS (
      INSERT INTO earnings_accounts (account_id, balance, updated_at)
      SELECT seller_account_id, credits - fee, now() FROM split
      ON CONFLICT (account_id) DO UPDATE
        SET balance = earnings_accounts.balance + EXCLUDED.balance, updated_at = now()
      RETURNING balance),
    entry AS (
      INSERT INTO earnings_entries (id, account_id, kind, gross, fee, fee_basis_points, amount,
        balance_after, idempotency_key, sale_id, dataset_id, buyer_account_id)
      SELECT ${ENTRY_ID_AFTER_LOCK}, split.seller_account_id, 'SALE', split.credits, split.fee, split.bp,
        split.credits - split.fee, moved.balance, 'sale:' || split.id::text, split.id, split.dataset_id,
        split.buyer_account_id
      FROM split, moved CROSS JOIN LATERAL
        (SELECT extract(epoch FROM clock_timestamp()) * 1000 + 0 * moved.balance AS ms) AS now_ms)
    SELECT credit_balance AS balance, low_credit_threshold AS threshold, low_credit_notified AS notified
    FROM credited`;
}

export class Ledger {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly now: () => Date = () => new Date(),
    /** Told after each committed debit and credit (the low-credit alert). */
    private readonly watch: BalanceWatch = noBalanceWatch,
  ) {}

  /** The account's balance now. */
  async balance(accountId: string): Promise<bigint> {
    const account = await this.prisma.account.findUnique({
      where: { id: accountId },
      select: { creditBalance: true },
    });
    if (!account) throw notFound("Account");
    return account.creditBalance;
  }

  /**
   * Holds `amount` credits before a read. Throws INSUFFICIENT_CREDITS (with `required` and
   * `balance`) and writes nothing when the balance is short. A zero amount holds nothing.
   */
  async reserve(accountId: string, amount: bigint, meta: ReservationMeta): Promise<Reservation> {
    assertAmount("amount", amount);
    const datasetId = meta.datasetId ?? null;
    if (amount === 0n) {
      return Object.freeze({ id: null, accountId, amount, reference: meta.reference, datasetId });
    }
    const apiKeyId = meta.apiKeyId ?? null;
    const id =
      (await this.holdInOneStatement(accountId, amount, meta)) ??
      (await this.holdCountingSpend(accountId, amount, meta));
    return Object.freeze({ id, accountId, amount, reference: meta.reference, datasetId, apiKeyId });
  }

  /**
   * The hold as one statement (one round trip, its own transaction): the conditional debit and
   * the RESERVATION row. Null when the reading key has spend limits, which need the counting
   * transaction ({@link holdCountingSpend}); INSUFFICIENT_CREDITS when the balance is short.
   */
  private async holdInOneStatement(
    accountId: string,
    amount: bigint,
    meta: ReservationMeta,
  ): Promise<string | null> {
    const now = this.now();
    const apiKeyId = meta.apiKeyId ?? null;
    const [row] = await this.prisma.$queryRaw<{ held: string | null; limited: boolean }[]>`
      WITH limited AS (
        SELECT EXISTS (SELECT 1 FROM api_keys WHERE id = ${apiKeyId}::uuid
          AND (daily_spend_limit IS NOT NULL OR monthly_spend_limit IS NOT NULL)) AS yes),
      debited AS (
        UPDATE accounts SET credit_balance = credit_balance - ${amount}::bigint
        WHERE id = ${accountId}::uuid AND credit_balance >= ${amount}::bigint AND NOT (SELECT yes FROM limited)
        RETURNING credit_balance),
      held AS (
        INSERT INTO credit_transactions
          (id, account_id, kind, amount, balance_after, reference, dataset_id, api_key_id, created_at)
        SELECT ${uuidv7InStatement(Prisma.sql`clock.ms`)}, ${accountId}::uuid, 'RESERVATION', ${-amount}::bigint,
          credit_balance, ${meta.reference}, ${meta.datasetId ?? null}::uuid, ${apiKeyId}::uuid, ${now}
        FROM debited CROSS JOIN LATERAL
          (SELECT extract(epoch FROM clock_timestamp()) * 1000 + 0 * debited.credit_balance AS ms) AS clock
        RETURNING id)
      SELECT (SELECT id FROM held) AS held, (SELECT yes FROM limited) AS limited`;
    if (row!.held !== null) return row!.held;
    if (row!.limited) return null;
    // Read after the statement: its own snapshot may predate the debits it waited for.
    throw insufficientCredits(amount, await this.balance(accountId));
  }

  /** The hold of a key with spend limits: the debit, the key's spend counters and the row, in one transaction. */
  private async holdCountingSpend(accountId: string, amount: bigint, meta: ReservationMeta): Promise<string> {
    const apiKeyId = meta.apiKeyId ?? null;
    const row = await this.transaction(async (tx) => {
      const balance = await debit(tx, accountId, amount);
      const now = this.now();
      if (apiKeyId !== null) await holdSpend(tx, apiKeyId, amount, now);
      return tx.creditTransaction.create({
        data: {
          accountId,
          kind: "RESERVATION",
          amount: -amount,
          balanceAfter: balance,
          reference: meta.reference,
          datasetId: meta.datasetId ?? null,
          apiKeyId,
          createdAt: now,
        },
      });
    });
    return row.id;
  }

  /**
   * Ends a hold for a read that succeeded: gives the hold back and charges `actual` (at most the
   * hold), with the publisher's sale and earnings when `meta.sale` says so, as one statement (one
   * round trip, one transaction). Settling a hold twice, or after releasing it, is a CONFLICT.
   */
  async settle(
    reservation: Reservation,
    actual: bigint,
    meta: SettleMeta = {},
  ): Promise<{ charged: bigint; balance: bigint }> {
    assertAmount("actual", actual);
    if (actual > reservation.amount) {
      throw new RangeError(`Cannot charge ${actual}: only ${reservation.amount} credits were reserved`);
    }
    if (meta.sale && reservation.datasetId === null) {
      throw new RangeError("Recording a sale needs a reservation made with a datasetId");
    }
    // A zero hold means a free read: nothing to give back, nothing to charge, nothing to write.
    if (reservation.id === null) return { charged: 0n, balance: await this.balance(reservation.accountId) };
    const reservationId = reservation.id;
    const settled = await this.once(reservationId, async () => {
      const [row] = await this.prisma.$queryRaw<SettledRow[]>(
        settleStatement(reservation, reservationId, actual, meta),
      );
      if (!row) throw await this.unsettleable(reservationId, reservation.accountId, actual);
      return row;
    });
    const balance = BigInt(settled.balance);
    // The low-credit check is a write of its own: only when this charge may have crossed the line.
    const threshold = settled.threshold === null ? null : BigInt(settled.threshold);
    if (actual > 0n && threshold !== null && !settled.notified && balance < threshold) {
      await this.watch.afterDebit(reservation.accountId);
    }
    return { charged: actual, balance };
  }

  // Why a settle statement changed nothing: the hold does not exist (for this account) or holds less.
  private async unsettleable(id: string, accountId: string, actual: bigint): Promise<Error> {
    const hold = await this.heldReservation(this.prisma, id, accountId);
    return new RangeError(`Cannot charge ${actual}: only ${hold.amount} credits are held`);
  }

  /** Ends a hold for a read that failed: everything held comes back, nothing is charged. */
  async release(reservation: Reservation): Promise<{ released: bigint; balance: bigint }> {
    if (reservation.id === null) return { released: 0n, balance: await this.balance(reservation.accountId) };
    const reservationId = reservation.id;
    return this.once(reservationId, () =>
      this.transaction(async (tx) => {
        const hold = await this.heldReservation(tx, reservationId, reservation.accountId);
        const balance = await credit(tx, hold.accountId, hold.amount);
        if (hold.apiKeyId !== null) await returnSpend(tx, hold.apiKeyId, hold.amount, hold.createdAt);
        await tx.creditTransaction.create({
          data: {
            accountId: hold.accountId,
            datasetId: hold.datasetId,
            apiKeyId: hold.apiKeyId,
            kind: "RELEASE",
            amount: hold.amount,
            balanceAfter: balance,
            idempotencyKey: key.release(reservationId),
            reference: hold.reference,
          },
        });
        return { released: hold.amount, balance };
      }),
    );
  }

  /**
   * Gives back holds whose read never settled them (the process died mid-read): RESERVATION
   * rows older than `before` without their RELEASE. Each goes through `release`, whose
   * idempotency key makes a race with a late settle harmless: one of them wins, the other is a
   * CONFLICT and is skipped here. Returns how many holds were released.
   */
  async releaseStaleHolds(before: Date, limit = 500): Promise<number> {
    const stale = await this.prisma.$queryRaw<
      {
        id: string;
        account_id: string;
        amount: bigint;
        reference: string | null;
        dataset_id: string | null;
      }[]
    >`
      SELECT r.id, r.account_id, -r.amount AS amount, r.reference, r.dataset_id
      FROM credit_transactions r
      WHERE r.kind = 'RESERVATION' AND r.created_at < ${before}
        AND NOT EXISTS (
          SELECT 1 FROM credit_transactions x
          WHERE x.account_id = r.account_id AND x.idempotency_key = 'release:' || r.id::text)
      ORDER BY r.created_at
      LIMIT ${limit}`;
    let released = 0;
    for (const hold of stale) {
      try {
        await this.release({
          id: hold.id,
          accountId: hold.account_id,
          amount: BigInt(hold.amount),
          reference: hold.reference ?? "",
          datasetId: hold.dataset_id,
        });
        released++;
      } catch (error) {
        if (!(error instanceof AppError && error.code === "CONFLICT")) throw error;
      }
    }
    return released;
  }

  /**
   * Adds credits. Applied once per (account, idempotencyKey): a retry, even a concurrent one,
   * returns the transaction the first call wrote. Reusing a key for another amount is a CONFLICT.
   */
  async topUp(
    accountId: string,
    amount: bigint,
    idempotencyKey: string,
    reference?: string,
  ): Promise<TopUpResult> {
    if (typeof amount !== "bigint" || amount <= 0n || amount > MAX_TOP_UP) {
      throw badInput(`A top-up must be between 1 and ${MAX_TOP_UP} credits`, { field: "amount" });
    }
    const storedKey = key.topUp(checkIdempotencyKey(idempotencyKey));
    const result = await this.transaction(async (tx) => {
      // Holding the account lock before looking for the key: a concurrent call with the same key
      // waits here, then finds the first call's committed row instead of applying again.
      await lockAccount(tx, accountId);
      const existing = await tx.creditTransaction.findUnique({
        where: { accountId_idempotencyKey: { accountId, idempotencyKey: storedKey } },
      });
      if (existing) {
        if (existing.amount !== amount) {
          throw conflict(`This idempotency key was already used for a top-up of ${existing.amount} credits`, {
            field: "idempotencyKey",
          });
        }
        return { transaction: existing, replayed: true };
      }
      const balance = await credit(tx, accountId, amount);
      const transaction = await tx.creditTransaction.create({
        data: {
          accountId,
          kind: "TOP_UP",
          amount,
          balanceAfter: balance,
          idempotencyKey: storedKey,
          reference: reference ?? null,
        },
      });
      return { transaction, replayed: false };
    });
    if (!result.replayed) await this.watch.afterCredit(accountId);
    return result;
  }

  /**
   * Buys a PURCHASED dataset: debit, PURCHASE ledger row, entitlement and Sale in one transaction.
   *
   * - ONE_TIME: the entitlement never expires. MONTHLY: it runs {@link SUBSCRIPTION_PERIOD_MS}
   *   from now; buying again after it lapsed renews it from now.
   * - An entitlement that is still active cannot be bought again (CONFLICT).
   * - Publishers cannot buy their own datasets (CONFLICT): they read them as owners, and a sale to
   *   oneself would only move credits in a circle and inflate sales figures.
   * - OPEN and METERED datasets have nothing to buy (BAD_USER_INPUT).
   * - With an idempotency key, a retry returns the first result instead of a CONFLICT.
   */
  async purchase(
    buyerAccountId: string,
    dataset: PurchasableDataset,
    idempotencyKey?: string,
    apiKeyId: string | null = null,
  ): Promise<PurchaseResult> {
    if (dataset.access !== "PURCHASED") {
      throw badInput(`This dataset is ${dataset.access}: there is nothing to buy`, { field: "datasetId" });
    }
    const price = dataset.purchasePrice;
    const term = dataset.purchaseTerm;
    if (price === null || price < 0n || term === null) {
      throw badInput("This dataset has no purchase price yet", { field: "datasetId" });
    }
    if (dataset.accountId === buyerAccountId) {
      throw conflict("You publish this dataset: publishers read their own datasets without buying them");
    }
    const storedKey = idempotencyKey === undefined ? null : key.purchase(checkIdempotencyKey(idempotencyKey));
    let result: PurchaseResult;
    try {
      result = await this.transaction(async (tx) => {
        // The buyer's row lock serializes this buyer's purchases, so the checks below see every
        // earlier purchase committed.
        await lockAccount(tx, buyerAccountId);
        if (storedKey !== null) {
          const replay = await this.purchaseReplay(tx, buyerAccountId, dataset.id, storedKey);
          if (replay) return replay;
        }
        const now = this.now();
        const current = await tx.purchase.findUnique({
          where: { accountId_datasetId: { accountId: buyerAccountId, datasetId: dataset.id } },
        });
        if (current && isActiveEntitlement(current, now)) {
          throw conflict("This account already has an active purchase of this dataset", {
            purchaseId: current.id,
            expiresAt: current.expiresAt?.toISOString() ?? null,
          });
        }
        const balance = await debit(tx, buyerAccountId, price);
        if (apiKeyId !== null) await holdSpend(tx, apiKeyId, price, now);
        const entitlement = {
          status: "ACTIVE" as const,
          expiresAt: term === "MONTHLY" ? new Date(now.getTime() + SUBSCRIPTION_PERIOD_MS) : null,
        };
        const purchase = current
          ? await tx.purchase.update({ where: { id: current.id }, data: entitlement })
          : await tx.purchase.create({
              data: { accountId: buyerAccountId, datasetId: dataset.id, ...entitlement },
            });
        const sale = await recordCharge(tx, {
          kind: term === "MONTHLY" ? "SUBSCRIPTION" : "PURCHASE",
          datasetId: dataset.id,
          buyerAccountId,
          sellerAccountId: dataset.accountId,
          purchaseId: purchase.id,
          credits: price,
        });
        const transaction = await tx.creditTransaction.create({
          data: {
            accountId: buyerAccountId,
            kind: "PURCHASE",
            amount: -price,
            balanceAfter: balance,
            idempotencyKey: storedKey,
            // Links the ledger row to its sale, which links to the entitlement.
            reference: `sale:${sale.id}`,
            datasetId: dataset.id,
            apiKeyId,
          },
        });
        return { purchase, sale, transaction, replayed: false };
      });
    } catch (error) {
      // Unreachable while every writer takes the buyer's lock first; kept as a CONFLICT, not a 500.
      translatePrismaError(error, "purchase");
    }
    if (!result.replayed) await this.watch.afterDebit(buyerAccountId);
    return result;
  }

  /**
   * Refunds a sale whole, once: the buyer gets its credits back (REFUND), the publisher's earnings
   * and the platform fee are reversed (earnings/earnings.ts), and a refunded purchase's entitlement
   * ends, all in one transaction. `inTransaction` runs in it too (the admin log). Refunding again
   * returns the first refund with `replayed`.
   */
  async refund(
    saleId: string,
    inTransaction: (tx: Db, sale: Sale) => Promise<void> = async () => {},
  ): Promise<RefundResult> {
    const result = await this.transaction(async (tx) => {
      // Marking the sale first takes its row lock: a concurrent refund waits, then sees it marked.
      const marked = await tx.sale.updateMany({
        where: { id: saleId, refundedAt: null, credits: { gt: 0n } },
        data: { refundedAt: this.now() },
      });
      const sale = await tx.sale.findUnique({ where: { id: saleId } });
      if (!sale) throw notFound("Sale");
      if (marked.count === 0) {
        if (sale.credits === 0n) throw badInput("This sale cost nothing: there is nothing to refund");
        const transaction = await tx.creditTransaction.findUniqueOrThrow({
          where: {
            accountId_idempotencyKey: { accountId: sale.buyerAccountId, idempotencyKey: key.refund(sale.id) },
          },
        });
        return { sale, transaction, replayed: true };
      }
      const balance = await credit(tx, sale.buyerAccountId, sale.credits);
      const transaction = await tx.creditTransaction.create({
        data: {
          accountId: sale.buyerAccountId,
          kind: "REFUND",
          amount: sale.credits,
          balanceAfter: balance,
          idempotencyKey: key.refund(sale.id),
          reference: `sale:${sale.id}`,
          datasetId: sale.datasetId,
        },
      });
      if (sale.purchaseId !== null) await this.endRefundedEntitlement(tx, sale);
      await reverseCharge(tx, sale);
      await inTransaction(tx, sale);
      return { sale, transaction, replayed: false };
    });
    if (!result.replayed) await this.watch.afterCredit(result.sale.buyerAccountId);
    return result;
  }

  // A refunded purchase no longer grants access, unless a later sale (a renewal, a purchase made
  // after this one) paid for the entitlement as it is now.
  private async endRefundedEntitlement(tx: Db, sale: Sale): Promise<void> {
    const latest = await tx.sale.findFirst({
      where: { purchaseId: sale.purchaseId },
      orderBy: { id: "desc" },
      select: { id: true },
    });
    if (latest?.id !== sale.id) return;
    await tx.purchase.updateMany({
      where: { id: sale.purchaseId!, status: "ACTIVE" },
      data: { status: "CANCELLED" },
    });
  }

  /**
   * Records a METERED sale on its own. Prefer `settle(..., { sale })`, which writes it in the
   * charge's transaction; this is for reads charged in bulk elsewhere (an export job).
   */
  recordMeteredSale(input: MeteredSaleInput): Promise<Sale> {
    return this.transaction((tx) => recordCharge(tx, { kind: "METERED", ...input }));
  }

  /** True while the account holds an active, unexpired entitlement to the dataset. */
  async isEntitled(accountId: string, datasetId: string): Promise<boolean> {
    const purchase = await this.prisma.purchase.findUnique({
      where: { accountId_datasetId: { accountId, datasetId } },
      select: { status: true, expiresAt: true },
    });
    return purchase !== null && isActiveEntitlement(purchase, this.now());
  }

  private async purchaseReplay(
    tx: Db,
    accountId: string,
    datasetId: string,
    storedKey: string,
  ): Promise<PurchaseResult | null> {
    const transaction = await tx.creditTransaction.findUnique({
      where: { accountId_idempotencyKey: { accountId, idempotencyKey: storedKey } },
    });
    if (!transaction) return null;
    const saleId = transaction.reference?.startsWith("sale:") ? transaction.reference.slice(5) : null;
    const sale = saleId ? await tx.sale.findUnique({ where: { id: saleId } }) : null;
    const purchase = sale?.purchaseId
      ? await tx.purchase.findUnique({ where: { id: sale.purchaseId } })
      : null;
    if (transaction.datasetId !== datasetId || !sale || !purchase) {
      throw conflict("This idempotency key was already used for another purchase", {
        field: "idempotencyKey",
      });
    }
    return { purchase, sale, transaction, replayed: true };
  }

  // The hold as the ledger recorded it: the RESERVATION row, not the caller's object, decides
  // what is given back, so a stale or hand-made Reservation cannot create credits.
  private async heldReservation(
    tx: Db,
    id: string,
    accountId: string,
  ): Promise<{
    accountId: string;
    amount: bigint;
    reference: string | null;
    datasetId: string | null;
    apiKeyId: string | null;
    createdAt: Date;
  }> {
    const row = await tx.creditTransaction.findUnique({ where: { id } });
    if (!row || row.kind !== "RESERVATION" || row.accountId !== accountId) throw notFound("Reservation");
    return {
      accountId: row.accountId,
      amount: -row.amount,
      reference: row.reference,
      datasetId: row.datasetId,
      apiKeyId: row.apiKeyId,
      createdAt: row.createdAt,
    };
  }

  // The release key is unique per account: a second settle/release of one hold fails the insert.
  /**
   * Settles and releases cut short by a PostgreSQL outage, retried until the database is back:
   * the hold comes back then, not after the stale-hold sweep (which stays for a process that
   * dies meanwhile). Both are idempotent, so a retry of one that did commit is a CONFLICT, done.
   */
  private readonly owed = new Map<string, () => Promise<unknown>>();
  private readonly owedTries = new Map<string, number>();
  private retrying: NodeJS.Timeout | undefined;

  /** Holds whose settle or release waits for PostgreSQL in this process. */
  get owedHolds(): number {
    return this.owed.size;
  }

  private oweLater(reservationId: string, fn: () => Promise<unknown>): void {
    this.owed.set(reservationId, fn);
    this.retrying ??= setTimeout(() => {
      this.retrying = undefined;
      void this.payOwed();
    }, OWED_RETRY_MS).unref();
  }

  private async payOwed(): Promise<void> {
    for (const [reservationId, fn] of this.owed) {
      try {
        await fn();
      } catch (error) {
        if (unavailableStore(error)) break; // still down: try them all again later
        // Just back, a database may still refuse for a moment (connections being re-established,
        // a pool that timed out): try again, for a minute at most.
        const conflict = error instanceof AppError && error.code === "CONFLICT";
        const tries = (this.owedTries.get(reservationId) ?? 0) + 1;
        if (!conflict && tries < OWED_MAX_TRIES) {
          this.owedTries.set(reservationId, tries);
          continue;
        }
      }
      // Done, already done (CONFLICT), or failing for good: the stale-hold sweep has the last word.
      this.owed.delete(reservationId);
      this.owedTries.delete(reservationId);
    }
    const next = this.owed.entries().next().value;
    if (next) this.oweLater(...next);
  }

  private async once<T>(reservationId: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (error) {
      if (unavailableStore(error)) this.oweLater(reservationId, () => this.once(reservationId, fn));
      if (!isUniqueViolation(error)) throw error;
      throw new AppError(
        "CONFLICT",
        "This reservation was already settled or released",
        { reservationId },
        { cause: error },
      );
    }
  }

  private transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return this.prisma.$transaction(fn, TX_OPTIONS);
  }
}
