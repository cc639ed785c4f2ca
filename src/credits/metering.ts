// How every read of records is paid for, whatever carries it (a page, a lookup, an aggregate, an
// export, a file drop): hold the most it can cost before reading, read, charge what it returned
// (with the publisher's sale) and give the rest back, or give everything back when the read
// failed; then record the usage event. Who may read and at what price is decided before, by
// access.ts; this only applies the price it decided.
import type { AccessDecision } from "./access.js";
import type { Ledger, Reservation } from "./ledger.js";
import { readCost } from "./pricing.js";
import type { UsageRecorder } from "./usage-recorder.js";

/** What one operation cost, reported in `extensions.cost` and `X-Credits-Remaining`. */
export interface Cost {
  records: number;
  credits: number;
  balance: number;
}

/** A decision that lets the reader have the records. */
export type Granted = Exclude<AccessDecision, { kind: "denied" }>;

/** One metered operation: who pays, for which dataset, under which decision. */
export interface Metered {
  accountId: string;
  /** The API key making the read (its spend limits apply), if any. */
  apiKeyId: string | null;
  dataset: { id: string; slug: string; accountId: string };
  decision: Granted;
  /** The usage event's operation: records, record, aggregate, export, delivery. */
  operation: string;
  /** The request, export or drop the usage event belongs to. */
  requestId: string;
}

/** What a read returned: its result, how many records, and whether its price is fixed. */
export interface ReadOutcome<T> {
  result: T;
  records: number;
  /** Fixed-price operations (a lookup that found its record, an aggregate) cost their whole hold. */
  fixed?: boolean;
}

/** Credits held for records that leave over time (an export, a file drop). */
export interface Hold {
  /** The credits held: the price of every record the operation may send. */
  readonly credits: bigint;
  /** The balance after the hold. */
  readonly balance: bigint;
  /**
   * Charges the `sent` records (at most those held for) and gives the rest back, or everything
   * when none were sent; records the usage event. Once: later calls return the first result.
   */
  finish(sent: number): Promise<Cost>;
}

export class Metering {
  constructor(
    private readonly ledger: Ledger,
    private readonly usage: Pick<UsageRecorder, "record">,
  ) {}

  /**
   * A read of records: holds `maxCost` at the decided price while the read runs, charges what it
   * returned and gives back the rest. INSUFFICIENT_CREDITS (or a spend limit) when the hold fails:
   * the rows read meanwhile are dropped, never returned, and nothing is charged. A failed read
   * gives back everything and charges nothing.
   *
   * The hold and the read run side by side, so a metered read waits for the longer of the two
   * rather than their sum; a free read fetches the balance it reports the same way.
   */
  async read<T>(
    op: Metered,
    maxCost: (pricePer100: bigint) => bigint,
    read: () => Promise<ReadOutcome<T>>,
  ): Promise<{ result: T; cost: Cost }> {
    const started = performance.now();
    if (op.decision.kind !== "metered") {
      const [outcome, balance] = await Promise.all([read(), this.ledger.balance(op.accountId)]);
      const cost = { records: outcome.records, credits: 0, balance: Number(balance) };
      this.recordUsage(op, cost, started);
      return { result: outcome.result, cost };
    }
    const price = op.decision.pricePer100;
    const [held, done] = await Promise.allSettled([this.reserve(op, maxCost(price)), read()]);
    if (held.status === "rejected") throw held.reason;
    const reservation = held.value;
    if (done.status === "rejected") {
      await this.ledger.release(reservation);
      throw done.reason;
    }
    const outcome = done.value;
    const credits = outcome.fixed ? reservation.amount : readCost(outcome.records, price);
    const { balance } = await this.settle(op, reservation, credits, outcome.records);
    const cost = { records: outcome.records, credits: Number(credits), balance: Number(balance) };
    this.recordUsage(op, cost, started);
    return { result: outcome.result, cost };
  }

  /**
   * Holds the price of `records` records for an operation that sends them over time. The caller
   * sends, then calls `finish` with how many were sent, whatever happened.
   */
  async hold(op: Metered, records: number): Promise<Hold> {
    const started = performance.now();
    const credits = op.decision.kind === "metered" ? readCost(records, op.decision.pricePer100) : 0n;
    const reservation = credits > 0n ? await this.reserve(op, credits) : null;
    const balance = await this.ledger.balance(op.accountId);
    let finished: Promise<Cost> | null = null;
    const finish = async (sent: number): Promise<Cost> => {
      let charged = 0n;
      let after: bigint;
      if (reservation && op.decision.kind === "metered" && sent > 0) {
        charged = readCost(Math.min(sent, records), op.decision.pricePer100);
        after = (await this.settle(op, reservation, charged, sent)).balance;
      } else if (reservation) {
        after = (await this.ledger.release(reservation)).balance;
      } else {
        after = await this.ledger.balance(op.accountId);
      }
      const cost = { records: sent, credits: Number(charged), balance: Number(after) };
      this.recordUsage(op, cost, started);
      return cost;
    };
    return { credits, balance, finish: (sent) => (finished ??= finish(sent)) };
  }

  private reserve(op: Metered, amount: bigint): Promise<Reservation> {
    return this.ledger.reserve(op.accountId, amount, {
      reference: `${op.operation} ${op.dataset.slug}`,
      datasetId: op.dataset.id,
      apiKeyId: op.apiKeyId,
    });
  }

  private settle(op: Metered, reservation: Reservation, credits: bigint, records: number) {
    return this.ledger.settle(reservation, credits, {
      sale: { sellerAccountId: op.dataset.accountId, records },
    });
  }

  // Usage is reporting, not money: batched off the request path (UsageRecorder).
  private recordUsage(op: Metered, cost: Cost, started: number): void {
    this.usage.record({
      accountId: op.accountId,
      apiKeyId: op.apiKeyId,
      datasetId: op.dataset.id,
      operation: op.operation,
      records: cost.records,
      credits: BigInt(cost.credits),
      durationMs: performance.now() - started,
      requestId: op.requestId,
    });
  }
}
