import { describe, expect, it } from "vitest";
import {
  monthBounds,
  publisherTotals,
  statementCsv,
  type Statement,
} from "../../src/statements/statement.js";

const empty = (): Statement => ({
  accountName: "Acme",
  month: "2026-02",
  ...monthBounds("2026-02")!,
  buyer: { openingBalance: 0n, closingBalance: 0n, topUps: [], purchases: [], reads: [], refunds: 0n },
  publisher: {
    openingBalance: 0n,
    closingBalance: 0n,
    sales: [],
    refunds: { gross: 0n, fees: 0n, net: 0n },
    payouts: [],
  },
});

describe("monthBounds", () => {
  it.each([
    ["2026-02", "2026-02-01T00:00:00.000Z", "2026-03-01T00:00:00.000Z"],
    ["2026-12", "2026-12-01T00:00:00.000Z", "2027-01-01T00:00:00.000Z"],
  ])("%s is a UTC calendar month", (month, from, to) => {
    expect(monthBounds(month)).toEqual({ from: new Date(from), to: new Date(to) });
  });

  it.each(["2026-13", "2026-00", "2026-1", "26-01", "2026-01-01", ""])("refuses %j", (month) => {
    expect(monthBounds(month)).toBeNull();
  });
});

describe("statementCsv", () => {
  it("quotes commas and quotes, and defuses spreadsheet formulas", () => {
    const s = empty();
    s.buyer.topUps.push({
      at: new Date("2026-02-03T10:00:00Z"),
      credits: 5n,
      reference: '=HYPERLINK("x"),y',
    });
    const lines = statementCsv(s).split("\r\n");
    expect(lines[2]).toBe(`buyer,top_up,2026-02-03,,"'=HYPERLINK(""x""),y",,,5,,`);
  });

  it("totals the publisher's sales after refunds", () => {
    const s = empty();
    s.publisher.sales.push({ dataset: "a", sales: 2, gross: 100n, fees: 10n, net: 90n });
    s.publisher.refunds = { gross: -40n, fees: -4n, net: -36n };
    s.publisher.payouts.push({ at: new Date(), amount: 30n, status: "PAID", note: null });
    s.publisher.payouts.push({ at: new Date(), amount: 7n, status: "REJECTED", note: null });
    expect(publisherTotals(s.publisher)).toEqual({ gross: 60n, fees: 6n, net: 54n, paidOut: 30n });
    expect(statementCsv(s)).toContain("publisher,total,2026-02-01..2026-02-28,,earned,,,60,6,54\r\n");
  });
});
