// The statement as a PDF (pdfkit, its built-in Helvetica: no font files to ship). Only layout
// here; every figure comes from statement.ts.
import PDFDocument from "pdfkit";
import { buyerTotals, publisherTotals, type Statement } from "./statement.js";

const day = (at: Date) => at.toISOString().slice(0, 10);
const credits = (n: bigint) => `${n.toLocaleString("en-US")} credits`;

/** Renders the statement; resolves to the whole document. */
export function statementPdf(s: Statement, now: Date = new Date()): Promise<Buffer> {
  const doc = new PDFDocument({ size: "A4", margin: 50, info: { Title: `Datahus statement ${s.month}` } });
  const chunks: Buffer[] = [];
  doc.on("data", (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });

  doc.fontSize(18).text(`Datahus statement ${s.month}`);
  doc.fontSize(10).text(`${s.accountName} · ${day(s.from)} to ${day(new Date(s.to.getTime() - 1))} (UTC)`);
  doc.text(`Issued ${now.toISOString()}`);

  const b = s.buyer;
  const bt = buyerTotals(b);
  heading(doc, "As a buyer");
  line(doc, "Opening balance", credits(b.openingBalance));
  line(doc, "Credits bought (top-ups)", credits(bt.topUps));
  for (const t of b.topUps) line(doc, `  ${day(t.at)} top-up ${t.reference ?? ""}`, credits(t.credits));
  line(doc, "Purchases", credits(bt.purchases));
  for (const p of b.purchases) line(doc, `  ${day(p.at)} ${p.dataset} (${p.kind})`, credits(p.credits));
  line(doc, "Metered reads", credits(bt.reads));
  for (const r of b.reads)
    line(doc, `  ${r.dataset}: ${r.reads} reads, ${r.records} records`, credits(r.credits));
  if (bt.refunds !== 0n) line(doc, "Refunds received", credits(bt.refunds));
  line(doc, "Closing balance", credits(b.closingBalance));

  const p = s.publisher;
  const pt = publisherTotals(p);
  heading(doc, "As a publisher");
  line(doc, "Opening earnings", credits(p.openingBalance));
  for (const x of p.sales) {
    line(doc, `  ${x.dataset}: ${x.sales} sales, gross ${x.gross}, fee ${x.fees}`, credits(x.net));
  }
  if (p.refunds.gross !== 0n) line(doc, "Refunds", credits(p.refunds.net));
  line(doc, "Sales (gross)", credits(pt.gross));
  line(doc, "Platform fees", credits(pt.fees));
  line(doc, "Net earnings", credits(pt.net));
  for (const x of p.payouts)
    line(doc, `  ${day(x.at)} payout ${x.status} ${x.note ?? ""}`, credits(x.amount));
  line(doc, "Paid out", credits(pt.paidOut));
  line(doc, "Closing earnings", credits(p.closingBalance));

  doc.end();
  return done;
}

function heading(doc: PDFKit.PDFDocument, text: string): void {
  doc.moveDown().fontSize(13).text(text).fontSize(10).moveDown(0.3);
}

function line(doc: PDFKit.PDFDocument, label: string, value: string): void {
  const y = doc.y;
  doc.text(label, 50, y, { width: 380 });
  const after = doc.y;
  doc.text(value, 430, y, { width: 115, align: "right" });
  doc.y = Math.max(after, doc.y);
}
