// Loads a month's statement for one account (statement.ts holds the shape and the arithmetic):
// the buyer's side from its credit ledger and the sales it paid for, the publisher's side from
// its earnings ledger and payouts. Balances are sums of the ledgers before each bound, so they
// agree with the ledger whatever order concurrent rows were written in.
import { badInput, notFound } from "../errors.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import { monthBounds, type BuyerStatement, type PublisherStatement, type Statement } from "./statement.js";

type Range = { from: Date; to: Date };

export class StatementService {
  constructor(private readonly prisma: PrismaClient) {}

  /** The caller's statement of `month` (YYYY-MM, UTC); admins may ask for any account's. */
  async statement(caller: Caller, month: string, accountId?: string | null): Promise<Statement> {
    const who = authorize(caller, ["account:read"]);
    const target = accountId ?? who.accountId;
    if (target !== who.accountId && who.role !== "ADMIN") throw notFound("Account");
    const range = monthBounds(month);
    if (!range) throw badInput("month must be YYYY-MM", { argument: "month" });
    const account = await this.prisma.account.findUnique({ where: { id: target }, select: { name: true } });
    if (!account) throw notFound("Account");
    const [buyer, publisher] = await Promise.all([this.buyer(target, range), this.publisher(target, range)]);
    return { accountName: account.name, month, ...range, buyer, publisher };
  }

  private async buyer(accountId: string, { from, to }: Range): Promise<BuyerStatement> {
    const [balances] = await this.prisma.$queryRaw<{ opening: bigint; closing: bigint; refunds: bigint }[]>`
      SELECT coalesce(sum(amount) FILTER (WHERE created_at < ${from}), 0)::bigint AS opening,
             coalesce(sum(amount), 0)::bigint AS closing,
             coalesce(sum(amount) FILTER (WHERE kind = 'REFUND' AND created_at >= ${from}), 0)::bigint AS refunds
      FROM credit_transactions WHERE account_id = ${accountId}::uuid AND created_at < ${to}`;
    const topUps = await this.prisma.creditTransaction.findMany({
      where: { accountId, kind: "TOP_UP", createdAt: { gte: from, lt: to } },
      orderBy: { id: "asc" },
      select: { createdAt: true, amount: true, reference: true },
    });
    const purchases = await this.prisma.$queryRaw<
      { at: Date; dataset: string; kind: string; credits: bigint }[]
    >`
      SELECT s.created_at AS at, d.slug AS dataset, s.kind::text AS kind, s.credits
      FROM sales s JOIN datasets d ON d.id = s.dataset_id
      WHERE s.buyer_account_id = ${accountId}::uuid AND s.kind <> 'METERED'
        AND s.created_at >= ${from} AND s.created_at < ${to}
      ORDER BY s.id`;
    const reads = await this.prisma.$queryRaw<
      { dataset: string; reads: bigint; records: bigint; credits: bigint }[]
    >`
      SELECT d.slug AS dataset, count(*) AS reads, coalesce(sum(s.records), 0)::bigint AS records,
             coalesce(sum(s.credits), 0)::bigint AS credits
      FROM sales s JOIN datasets d ON d.id = s.dataset_id
      WHERE s.buyer_account_id = ${accountId}::uuid AND s.kind = 'METERED'
        AND s.created_at >= ${from} AND s.created_at < ${to}
      GROUP BY d.slug ORDER BY d.slug`;
    return {
      openingBalance: BigInt(balances!.opening),
      closingBalance: BigInt(balances!.closing),
      topUps: topUps.map((t) => ({ at: t.createdAt, credits: t.amount, reference: t.reference })),
      purchases: purchases.map((p) => ({ ...p, credits: BigInt(p.credits) })),
      reads: reads.map((r) => ({
        dataset: r.dataset,
        reads: Number(r.reads),
        records: BigInt(r.records),
        credits: BigInt(r.credits),
      })),
      refunds: BigInt(balances!.refunds),
    };
  }

  private async publisher(accountId: string, { from, to }: Range): Promise<PublisherStatement> {
    const [totals] = await this.prisma.$queryRaw<
      { opening: bigint; closing: bigint; r_gross: bigint; r_fee: bigint; r_net: bigint }[]
    >`
      SELECT coalesce(sum(amount) FILTER (WHERE created_at < ${from}), 0)::bigint AS opening,
             coalesce(sum(amount), 0)::bigint AS closing,
             coalesce(sum(gross) FILTER (WHERE kind = 'REFUND' AND created_at >= ${from}), 0)::bigint AS r_gross,
             coalesce(sum(fee) FILTER (WHERE kind = 'REFUND' AND created_at >= ${from}), 0)::bigint AS r_fee,
             coalesce(sum(amount) FILTER (WHERE kind = 'REFUND' AND created_at >= ${from}), 0)::bigint AS r_net
      FROM earnings_entries WHERE account_id = ${accountId}::uuid AND created_at < ${to}`;
    const sales = await this.prisma.$queryRaw<
      { dataset: string; sales: bigint; gross: bigint; fees: bigint; net: bigint }[]
    >`
      SELECT coalesce(d.slug, '') AS dataset, count(*) AS sales, sum(e.gross)::bigint AS gross,
             sum(e.fee)::bigint AS fees, sum(e.amount)::bigint AS net
      FROM earnings_entries e LEFT JOIN datasets d ON d.id = e.dataset_id
      WHERE e.account_id = ${accountId}::uuid AND e.kind = 'SALE'
        AND e.created_at >= ${from} AND e.created_at < ${to}
      GROUP BY 1 ORDER BY 1`;
    const payouts = await this.prisma.payout.findMany({
      where: { accountId, createdAt: { gte: from, lt: to } },
      orderBy: { id: "asc" },
    });
    return {
      openingBalance: BigInt(totals!.opening),
      closingBalance: BigInt(totals!.closing),
      sales: sales.map((s) => ({
        dataset: s.dataset,
        sales: Number(s.sales),
        gross: BigInt(s.gross),
        fees: BigInt(s.fees),
        net: BigInt(s.net),
      })),
      refunds: { gross: BigInt(totals!.r_gross), fees: BigInt(totals!.r_fee), net: BigInt(totals!.r_net) },
      payouts: payouts.map((p) => ({ at: p.createdAt, amount: p.amount, status: p.status, note: p.note })),
    };
  }
}
