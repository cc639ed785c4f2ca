// Monthly statements on the real stack: a buyer tops up, reads a METERED dataset and buys a
// PURCHASED one; its publisher is paid out. Each side's statement (GraphQL JSON, CSV and PDF
// downloads) holds the month's figures, and its balances agree with the ledgers. The PDF is
// checked by converting it back to text (pdf-parse).
import { PDFParse } from "pdf-parse";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ref } from "../../src/records/read.service.js";
import { writeRecords } from "../../src/records/records.writer.js";
import {
  ApprovePayoutDocument,
  BuyDatasetDocument,
  CreateDatasetDocument,
  EarningsDocument,
  MeDocument,
  PublishDatasetDocument,
  RecordsTotalDocument,
  RequestPayoutDocument,
  SetPlatformFeeDocument,
  StatementDocument,
  TopUpCreditsDocument,
} from "../generated/graphql.js";
import type { CreateDatasetInput } from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let admin: TestAccount;
let publisher: TestAccount;
let buyer: TestAccount;
/** What the buyer's metered read cost, from its balance. */
let readCost: number;
const month = new Date().toISOString().slice(0, 7);

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

async function dataset(
  slug: string,
  extra: Pick<CreateDatasetInput, "access"> & Partial<CreateDatasetInput>,
) {
  const input: CreateDatasetInput = {
    slug,
    title: slug,
    category: "Transport",
    keyColumns: ["id"],
    columns: [{ name: "id", type: "INT64" as const, nullable: false }],
    ...extra,
  };
  const id = ok(await stack.graphql(CreateDatasetDocument, { input }, publisher.headers)).createDataset.id;
  ok(await stack.graphql(PublishDatasetDocument, { id }, publisher.headers));
  return id;
}

const balance = async (who: TestAccount) =>
  ok(await stack.graphql(MeDocument, {}, who.headers)).me.account!.creditBalance;

beforeAll(async () => {
  stack = await startStack();
  admin = await stack.admin();
  publisher = await stack.signup("Ferry Times", "PUBLISHER");
  buyer = await stack.signup("Route Planner");
  ok(await stack.graphql(SetPlatformFeeDocument, { basisPoints: 1000 }, admin.headers));

  await dataset("ferry_departures", { access: "METERED", pricePer100Records: 100 });
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({
    where: { slug: "ferry_departures" },
  });
  const rows = Array.from({ length: 40 }, (_, i) => ({ id: i + 1 }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, ref(row), rows, {
    version: 1,
    runId: "seed",
  });
  const timetable = await dataset("ferry_timetable_2027", {
    access: "PURCHASED",
    purchasePrice: 95,
    purchaseTerm: "ONE_TIME",
  });

  const topUp = { accountId: buyer.accountId, amount: 1000, idempotencyKey: "statement-top-up" };
  ok(await stack.graphql(TopUpCreditsDocument, topUp, admin.headers));
  const beforeRead = await balance(buyer);
  const read = ok(
    await stack.graphql(RecordsTotalDocument, { slug: "ferry_departures", first: 20 }, buyer.headers),
  );
  expect(read.dataset!.records.edges).toHaveLength(20);
  readCost = beforeRead - (await balance(buyer));
  expect(readCost).toBeGreaterThan(0);
  ok(await stack.graphql(BuyDatasetDocument, { datasetId: timetable }, buyer.headers));

  const payout = ok(
    await stack.graphql(RequestPayoutDocument, { amount: 50 }, publisher.headers),
  ).requestPayout;
  ok(
    await stack.graphql(ApprovePayoutDocument, { id: payout.payout.id, reference: "SEPA-77" }, admin.headers),
  );
});

afterAll(async () => {
  await stack?.close();
});

async function download(file: string, who: TestAccount | null) {
  const response = await fetch(`${stack.url}/api/v1/statements/${file}`, { headers: who?.headers ?? {} });
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: Buffer.from(await response.arrayBuffer()),
  };
}

describe("a buyer's statement", () => {
  it("holds the month's top-ups, purchases and reads by dataset, and balances that match the ledger", async () => {
    const { statement } = ok(await stack.graphql(StatementDocument, { month }, buyer.headers));
    const closing = await balance(buyer);
    expect(statement.buyer).toMatchObject({
      openingBalance: 0,
      closingBalance: closing,
      purchases: 95,
      reads: readCost,
      refunds: 0,
      purchaseLines: [{ dataset: "ferry_timetable_2027", kind: "PURCHASE", credits: 95 }],
      readsByDataset: [{ dataset: "ferry_departures", reads: 1, records: 20, credits: readCost }],
    });
    expect(statement.buyer.topUpLines).toContainEqual({ credits: 1000, reference: "admin top-up" });
    // Opening + top-ups - purchases - reads + refunds = closing, to the credit.
    const b = statement.buyer;
    expect(b.openingBalance + b.topUps - b.purchases - b.reads + b.refunds).toBe(b.closingBalance);
    expect(statement.publisher).toMatchObject({ gross: 0, salesByDataset: [], payouts: [] });
  });

  it("downloads as CSV with one line per figure", async () => {
    const csv = await download(`${month}.csv`, buyer);
    expect(csv.status).toBe(200);
    expect(csv.type).toMatch(/^text\/csv/);
    const lines = csv.body.toString("utf8").trim().split("\r\n");
    expect(lines[0]).toBe("side,section,date,dataset,description,count,records,credits,fee,net");
    expect(lines).toContainEqual(
      expect.stringMatching(/^buyer,purchase,\d{4}-\d{2}-\d{2},ferry_timetable_2027,PURCHASE,,,-95,,$/),
    );
    expect(lines).toContainEqual(
      expect.stringMatching(
        new RegExp(`^buyer,reads,[^,]+,ferry_departures,metered reads,1,20,-${readCost},,$`),
      ),
    );
    expect(lines.at(-1)).toMatch(/^publisher,closing_balance,/);
  });
});

describe("a publisher's statement", () => {
  it("holds sales by dataset with fees, payouts, and its earnings balance", async () => {
    const { statement } = ok(await stack.graphql(StatementDocument, { month }, publisher.headers));
    const earnings = ok(await stack.graphql(EarningsDocument, {}, publisher.headers)).earnings;
    const readFee = Math.floor(readCost / 10);
    expect(statement.publisher).toEqual({
      openingBalance: 0,
      closingBalance: earnings.balance,
      gross: 95 + readCost,
      fees: 9 + readFee,
      net: 86 + readCost - readFee,
      paidOut: 50,
      salesByDataset: [
        { dataset: "ferry_departures", sales: 1, gross: readCost, fees: readFee, net: readCost - readFee },
        { dataset: "ferry_timetable_2027", sales: 1, gross: 95, fees: 9, net: 86 },
      ],
      payouts: [{ amount: 50, status: "PAID", note: "SEPA-77" }],
    });
    expect(statement.publisher.net - 50).toBe(statement.publisher.closingBalance);
  });

  it("renders as a PDF whose text holds the figures", async () => {
    const pdf = await download(`${month}.pdf`, publisher);
    expect(pdf.status).toBe(200);
    expect(pdf.type).toBe("application/pdf");
    expect(pdf.body.subarray(0, 5).toString("latin1")).toBe("%PDF-");
    const parser = new PDFParse({ data: new Uint8Array(pdf.body) });
    const { text } = await parser.getText();
    await parser.destroy();
    const readFee = Math.floor(readCost / 10);
    expect(text).toContain(`Datahus statement ${month}`);
    expect(text).toContain("Ferry Times");
    expect(text).toContain("ferry_timetable_2027: 1 sales, gross 95, fee 9");
    expect(text).toMatch(new RegExp(`Sales \\(gross\\)\\s+${95 + readCost} credits`));
    expect(text).toMatch(new RegExp(`Platform fees\\s+${9 + readFee} credits`));
    expect(text).toMatch(new RegExp(`Net earnings\\s+${86 + readCost - readFee} credits`));
    expect(text).toMatch(/Paid out\s+50 credits/);
    expect(text).toContain("payout PAID SEPA-77");
  });
});

describe("statements", () => {
  it("are their account's own: another account's is NOT_FOUND, a bad month BAD_USER_INPUT, anonymous 401", async () => {
    expect(
      code(await stack.graphql(StatementDocument, { month, accountId: buyer.accountId }, publisher.headers)),
    ).toBe("NOT_FOUND");
    const byAdmin = ok(
      await stack.graphql(StatementDocument, { month, accountId: buyer.accountId }, admin.headers),
    );
    expect(byAdmin.statement.accountName).toBe("Route Planner");
    expect(code(await stack.graphql(StatementDocument, { month: "2026-13" }, buyer.headers))).toBe(
      "BAD_USER_INPUT",
    );
    expect((await download(`${month}.pdf`, null)).status).toBe(401);
    expect((await download(`${month}.xlsx`, buyer)).status).toBe(400);
    expect(
      (await download(`${month}.csv?accountId=${encodeURIComponent(buyer.accountId)}`, publisher)).status,
    ).toBe(404);
  });
});
