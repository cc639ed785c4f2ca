// Publishers' earnings as callers see them, payouts from request to PAID or REJECTED, the platform
// fee, and admin refunds. What moves earnings on a charge lives in earnings.ts; what moves credits
// lives in credits/ledger.ts.
//
// A payout takes its amount off the earnings balance when it is requested (so a balance cannot be
// asked for twice), an admin then marks it PAID (final: approving again changes nothing and pays
// nothing) or REJECTED (the amount comes back, once).
import { logAdminAction } from "../admin/admin-log.js";
import type { Ledger, RefundResult } from "../credits/ledger.js";
import { ModelReader } from "../db/model-reader.js";
import { AppError, badInput, conflict, notFound } from "../errors.js";
import type {
  EarningsEntry,
  Payout,
  PayoutStatus,
  Prisma,
  PrismaClient,
} from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageArgs, PageLimits } from "../pagination.js";
import { earningsKey, moveEarnings } from "./earnings.js";
import { MAX_FEE_BASIS_POINTS } from "./fees.js";

type Db = Prisma.TransactionClient;

export interface EarningsSummary {
  /** Available to pay out now (sales less fees, refunds and payouts requested). */
  balance: bigint;
  /** What buyers paid, less refunds. */
  gross: bigint;
  /** Platform fees, less fees given back on refunds. */
  fees: bigint;
  /** Requested payouts not decided yet. */
  pending: bigint;
  /** Payouts PAID. */
  paidOut: bigint;
}

export interface PayoutResult {
  payout: Payout;
  /** True when nothing was applied this time (a retried request, a second approval). */
  replayed: boolean;
}

const MAX_KEY_LENGTH = 200;
const TX_OPTIONS = { maxWait: 10_000, timeout: 15_000 } as const;

export class EarningsService {
  readonly entries: ModelReader<EarningsEntry>;
  readonly payouts: ModelReader<Payout>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly ledger: Ledger,
    limits: PageLimits,
  ) {
    this.entries = new ModelReader(prisma.earningsEntry, "earningsEntry", limits);
    this.payouts = new ModelReader(prisma.payout, "payout", limits);
  }

  /** The caller's earnings (admins: any account's). */
  async summary(caller: Caller, accountId?: string | null): Promise<EarningsSummary> {
    const who = authorize(caller, ["PUBLISHER", "account:read"]);
    const target = accountId ?? who.accountId;
    if (target !== who.accountId && who.role !== "ADMIN") throw notFound("Account");
    const [row] = await this.prisma.$queryRaw<
      { balance: bigint; gross: bigint; fees: bigint; pending: bigint; paid: bigint }[]
    >`
      SELECT
        coalesce((SELECT balance FROM earnings_accounts WHERE account_id = ${target}::uuid), 0)::bigint AS balance,
        coalesce((SELECT sum(gross) FROM earnings_entries WHERE account_id = ${target}::uuid), 0)::bigint AS gross,
        coalesce((SELECT sum(fee) FROM earnings_entries WHERE account_id = ${target}::uuid), 0)::bigint AS fees,
        coalesce((SELECT sum(amount) FROM payouts WHERE account_id = ${target}::uuid AND status = 'REQUESTED'), 0)::bigint AS pending,
        coalesce((SELECT sum(amount) FROM payouts WHERE account_id = ${target}::uuid AND status = 'PAID'), 0)::bigint AS paid`;
    return {
      balance: BigInt(row!.balance),
      gross: BigInt(row!.gross),
      fees: BigInt(row!.fees),
      pending: BigInt(row!.pending),
      paidOut: BigInt(row!.paid),
    };
  }

  /** The caller's payouts (admins: everyone's), optionally of one status. */
  payoutPage(caller: Caller, args: PageArgs, status: PayoutStatus | null) {
    authorize(caller, ["account:read"]);
    return this.payouts.page(caller, args, status ? { status } : {});
  }

  /**
   * Asks for `amount` of the caller's earnings. Takes it off the balance at once (INSUFFICIENT_CREDITS
   * when the balance is short, and nothing written). A retry with the same key returns the first payout.
   */
  async requestPayout(caller: Caller, amount: number, idempotencyKey: string | null): Promise<PayoutResult> {
    const who = authorize(caller, ["PUBLISHER", "account:write"]);
    if (!Number.isSafeInteger(amount) || amount < 1) {
      throw badInput("amount must be a whole number of credits >= 1", { argument: "amount" });
    }
    if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > MAX_KEY_LENGTH)) {
      throw badInput(`The idempotency key must be 1 to ${MAX_KEY_LENGTH} characters`, {
        argument: "idempotencyKey",
      });
    }
    const accountId = who.accountId;
    const wanted = BigInt(amount);
    return this.prisma.$transaction(async (tx) => {
      // The earnings row lock serialises this publisher's requests: a retry waits, then finds the first.
      const balance = await lockEarnings(tx, accountId);
      if (idempotencyKey !== null) {
        const existing = await tx.payout.findUnique({
          where: { accountId_idempotencyKey: { accountId, idempotencyKey } },
        });
        if (existing) {
          if (existing.amount !== wanted) {
            throw conflict(`This idempotency key was already used for a payout of ${existing.amount}`, {
              argument: "idempotencyKey",
            });
          }
          return { payout: existing, replayed: true };
        }
      }
      if (balance < wanted) {
        throw new AppError(
          "INSUFFICIENT_CREDITS",
          `Not enough earnings: asked ${wanted}, available ${balance}`,
          {
            required: amount,
            balance: Number(balance),
          },
        );
      }
      const payout = await tx.payout.create({ data: { accountId, amount: wanted, idempotencyKey } });
      const balanceAfter = await moveEarnings(tx, accountId, -wanted);
      await tx.earningsEntry.create({
        data: {
          accountId,
          kind: "PAYOUT",
          amount: -wanted,
          balanceAfter,
          idempotencyKey: earningsKey.payout(payout.id),
          payoutId: payout.id,
        },
      });
      return { payout, replayed: false };
    }, TX_OPTIONS);
  }

  /**
   * Admin: the payout was paid (`reference`: the bank transfer's). Final. Approving a PAID payout
   * again returns it with `replayed` and changes nothing; a REJECTED one is a CONFLICT.
   */
  async approvePayout(caller: Caller, payoutId: string, reference: string): Promise<PayoutResult> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const note = checkNote(reference, "reference");
    return this.prisma.$transaction(async (tx) => {
      // The status condition makes the decision once: a concurrent approval waits for this row's
      // lock, then matches nothing.
      const decided = await tx.payout.updateMany({
        where: { id: payoutId, status: "REQUESTED" },
        data: { status: "PAID", note, decidedBy: who.userId, decidedAt: new Date() },
      });
      const payout = await tx.payout.findUnique({ where: { id: payoutId } });
      if (!payout) throw notFound("Payout");
      if (decided.count === 0) {
        if (payout.status === "PAID") return { payout, replayed: true };
        throw conflict("This payout was rejected; it cannot be paid", { status: payout.status });
      }
      await logAdminAction(
        tx,
        who,
        "payout.approve",
        { type: "Payout", id: payout.id },
        {
          amount: Number(payout.amount),
          reference: note,
        },
      );
      return { payout, replayed: false };
    }, TX_OPTIONS);
  }

  /** Admin: refuse a requested payout; its amount returns to the publisher's earnings, once. */
  async rejectPayout(caller: Caller, payoutId: string, reason: string): Promise<PayoutResult> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const note = checkNote(reason, "reason");
    return this.prisma.$transaction(async (tx) => {
      const decided = await tx.payout.updateMany({
        where: { id: payoutId, status: "REQUESTED" },
        data: { status: "REJECTED", note, decidedBy: who.userId, decidedAt: new Date() },
      });
      const payout = await tx.payout.findUnique({ where: { id: payoutId } });
      if (!payout) throw notFound("Payout");
      if (decided.count === 0) {
        if (payout.status === "REJECTED") return { payout, replayed: true };
        throw conflict("A paid payout is final: it cannot be rejected", { status: payout.status });
      }
      const balanceAfter = await moveEarnings(tx, payout.accountId, payout.amount);
      await tx.earningsEntry.create({
        data: {
          accountId: payout.accountId,
          kind: "PAYOUT_REVERSAL",
          amount: payout.amount,
          balanceAfter,
          idempotencyKey: earningsKey.payoutReversal(payout.id),
          payoutId: payout.id,
        },
      });
      await logAdminAction(
        tx,
        who,
        "payout.reject",
        { type: "Payout", id: payout.id },
        {
          amount: Number(payout.amount),
          reason: note,
        },
      );
      return { payout, replayed: false };
    }, TX_OPTIONS);
  }

  /** Admin: refund a sale whole; both ledgers are reversed (credits/ledger.ts `refund`). */
  async refundSale(caller: Caller, saleId: string, reason: string): Promise<RefundResult> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const note = checkNote(reason, "reason");
    return this.ledger.refund(saleId, (tx, sale) =>
      logAdminAction(
        tx,
        who,
        "sale.refund",
        { type: "Sale", id: sale.id },
        {
          credits: Number(sale.credits),
          reason: note,
        },
      ),
    );
  }

  async platformFee(caller: Caller): Promise<number> {
    authorize(caller, ["ADMIN", "admin"]);
    const settings = await this.prisma.platformSettings.findUnique({ where: { id: 1 } });
    return settings?.feeBasisPoints ?? 0;
  }

  /** Admin: the platform fee on every charge from now on; each earnings entry keeps the rate it was made at. */
  async setPlatformFee(caller: Caller, basisPoints: number): Promise<number> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    if (!Number.isInteger(basisPoints) || basisPoints < 0 || basisPoints > MAX_FEE_BASIS_POINTS) {
      throw badInput(`basisPoints must be a whole number from 0 to ${MAX_FEE_BASIS_POINTS}`, {
        argument: "basisPoints",
      });
    }
    return this.prisma.$transaction(async (tx) => {
      const before = await tx.platformSettings.findUnique({ where: { id: 1 } });
      const settings = await tx.platformSettings.upsert({
        where: { id: 1 },
        create: { id: 1, feeBasisPoints: basisPoints },
        update: { feeBasisPoints: basisPoints },
      });
      await logAdminAction(
        tx,
        who,
        "platform.fee",
        { type: "PlatformSettings", id: "1" },
        {
          from: before?.feeBasisPoints ?? 0,
          to: basisPoints,
        },
      );
      return settings.feeBasisPoints;
    });
  }
}

async function lockEarnings(tx: Db, accountId: string): Promise<bigint> {
  await tx.$executeRaw`
    INSERT INTO earnings_accounts (account_id, balance, updated_at) VALUES (${accountId}::uuid, 0, now())
    ON CONFLICT (account_id) DO NOTHING`;
  const rows = await tx.$queryRaw<{ balance: bigint }[]>`
    SELECT balance FROM earnings_accounts WHERE account_id = ${accountId}::uuid FOR UPDATE`;
  return BigInt(rows[0]!.balance);
}

function checkNote(value: string, argument: string): string {
  const trimmed = value.trim();
  if (trimmed.length === 0 || trimmed.length > 500) {
    throw badInput(`${argument} must be 1 to 500 characters`, { argument });
  }
  return trimmed;
}
