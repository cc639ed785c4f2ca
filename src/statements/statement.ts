// A monthly statement, as data: both sides of one account's money in one UTC calendar month.
// Pure: the month's bounds and the CSV lines are computed here from the figures the service
// loaded, so the rules are tested without services. PDF rendering is statement.pdf.ts.

export interface BuyerStatement {
  /** Credits at the start of the month and at its end (ledger balances). */
  openingBalance: bigint;
  closingBalance: bigint;
  topUps: { at: Date; credits: bigint; reference: string | null }[];
  purchases: { at: Date; dataset: string; kind: string; credits: bigint }[];
  /** Metered reads, by dataset. */
  reads: { dataset: string; reads: number; records: bigint; credits: bigint }[];
  /** Credits given back by refunds. */
  refunds: bigint;
}

export interface PublisherStatement {
  openingBalance: bigint;
  closingBalance: bigint;
  /** Sales and metered reads of each dataset: what buyers paid, the platform fee, the net. */
  sales: { dataset: string; sales: number; gross: bigint; fees: bigint; net: bigint }[];
  /** Refunds of earlier sales (negative gross, fee and net). */
  refunds: { gross: bigint; fees: bigint; net: bigint };
  payouts: { at: Date; amount: bigint; status: string; note: string | null }[];
}

export interface Statement {
  accountName: string;
  month: string;
  from: Date;
  to: Date;
  buyer: BuyerStatement;
  publisher: PublisherStatement;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** [from, to) of a UTC calendar month written YYYY-MM; null when it is not one. */
export function monthBounds(month: string): { from: Date; to: Date } | null {
  const match = MONTH.exec(month);
  if (!match) return null;
  const year = Number(match[1]);
  const index = Number(match[2]) - 1;
  return { from: new Date(Date.UTC(year, index, 1)), to: new Date(Date.UTC(year, index + 1, 1)) };
}

export const sum = <T>(rows: readonly T[], of: (row: T) => bigint): bigint =>
  rows.reduce((total, row) => total + of(row), 0n);

/** The publisher's figures of the month: gross, fees and net of its sales after refunds. */
export function publisherTotals(p: PublisherStatement) {
  const gross = sum(p.sales, (s) => s.gross) + p.refunds.gross;
  const fees = sum(p.sales, (s) => s.fees) + p.refunds.fees;
  return {
    gross,
    fees,
    net: gross - fees,
    paidOut: sum(p.payouts, (x) => (x.status === "PAID" ? x.amount : 0n)),
  };
}

/** The buyer's spending of the month, by kind. */
export function buyerTotals(b: BuyerStatement) {
  return {
    topUps: sum(b.topUps, (t) => t.credits),
    purchases: sum(b.purchases, (p) => p.credits),
    reads: sum(b.reads, (r) => r.credits),
    refunds: b.refunds,
  };
}

const day = (at: Date) => at.toISOString().slice(0, 10);

function csvField(value: string): string {
  // Quote what needs it; a leading =, +, - or @ would be a formula to a spreadsheet.
  const safe = /^[=+\-@\t\r]/.test(value) && !/^-?\d+$/.test(value) ? `'${value}` : value;
  return /[",\n\r]/.test(safe) ? `"${safe.replaceAll('"', '""')}"` : safe;
}

export const CSV_HEADER = [
  "side",
  "section",
  "date",
  "dataset",
  "description",
  "count",
  "records",
  "credits",
  "fee",
  "net",
];

type Cell = string | number | bigint | null;

interface CsvLine {
  dataset?: string;
  description?: string | null;
  count?: number;
  records?: bigint;
  credits: bigint;
  fee?: bigint;
  net?: bigint;
}

/** The statement as CSV: one line per figure, both sides, totals last. */
export function statementCsv(s: Statement): string {
  const lines: Cell[][] = [CSV_HEADER];
  const add = (side: string, section: string, date: string, l: CsvLine) =>
    lines.push(
      [side, section, date, l.dataset ?? "", l.description ?? "", l.count ?? "", l.records ?? ""].concat([
        l.credits,
        l.fee ?? "",
        l.net ?? "",
      ]),
    );
  const b = s.buyer;
  const p = s.publisher;
  const first = day(s.from);
  const last = day(new Date(s.to.getTime() - 1));
  const period = `${first}..${last}`;
  add("buyer", "opening_balance", first, { credits: b.openingBalance });
  for (const t of b.topUps)
    add("buyer", "top_up", day(t.at), { description: t.reference, credits: t.credits });
  for (const x of b.purchases) {
    add("buyer", "purchase", day(x.at), { dataset: x.dataset, description: x.kind, credits: -x.credits });
  }
  for (const r of b.reads) {
    const line = { dataset: r.dataset, description: "metered reads", count: r.reads, records: r.records };
    add("buyer", "reads", period, { ...line, credits: -r.credits });
  }
  if (b.refunds !== 0n) add("buyer", "refunds", period, { credits: b.refunds });
  add("buyer", "closing_balance", last, { credits: b.closingBalance });
  add("publisher", "opening_balance", first, { credits: p.openingBalance });
  for (const x of p.sales) {
    const line = { dataset: x.dataset, description: "sales and metered reads", count: x.sales };
    add("publisher", "sales", period, { ...line, credits: x.gross, fee: x.fees, net: x.net });
  }
  if (p.refunds.gross !== 0n) {
    add("publisher", "refunds", period, {
      credits: p.refunds.gross,
      fee: p.refunds.fees,
      net: p.refunds.net,
    });
  }
  for (const x of p.payouts) {
    add("publisher", "payout", day(x.at), {
      description: `${x.status} ${x.note ?? ""}`.trim(),
      credits: -x.amount,
    });
  }
  const totals = publisherTotals(p);
  add("publisher", "total", period, {
    description: "earned",
    credits: totals.gross,
    fee: totals.fees,
    net: totals.net,
  });
  add("publisher", "closing_balance", last, { credits: p.closingBalance });
  return (
    lines.map((line) => line.map((v) => csvField(v === null ? "" : String(v))).join(",")).join("\r\n") +
    "\r\n"
  );
}
