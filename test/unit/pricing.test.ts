import { describe, expect, it } from "vitest";
import {
  AGGREGATE_COST,
  RECORD_LOOKUP_COST,
  aggregateCost,
  readCost,
  recordLookupCost,
  reservationFor,
} from "../../src/credits/pricing.js";

describe("readCost", () => {
  it("charges nothing for an empty read", () => {
    expect(readCost(0, 7n)).toBe(0n);
    expect(readCost(0, 0n)).toBe(0n);
  });

  it("charges every started block of 100 records", () => {
    expect(readCost(1, 7n)).toBe(7n);
    expect(readCost(99, 7n)).toBe(7n);
    expect(readCost(100, 7n)).toBe(7n);
    expect(readCost(101, 7n)).toBe(14n);
    expect(readCost(200, 7n)).toBe(14n);
    expect(readCost(1_000, 3n)).toBe(30n);
  });

  it("charges at least 1 credit for a non-empty read, even at price 0", () => {
    expect(readCost(1, 0n)).toBe(1n);
    expect(readCost(5_000, 0n)).toBe(1n);
    expect(readCost(1, 1n)).toBe(1n);
  });

  it("stays exact beyond 2^53 credits", () => {
    const price = 2n ** 60n;
    expect(readCost(250, price)).toBe(3n * price);
  });

  it("rejects impossible inputs", () => {
    expect(() => readCost(-1, 1n)).toThrow(RangeError);
    expect(() => readCost(1.5, 1n)).toThrow(RangeError);
    expect(() => readCost(Number.NaN, 1n)).toThrow(RangeError);
    expect(() => readCost(Number.POSITIVE_INFINITY, 1n)).toThrow(RangeError);
    expect(() => readCost(1, -1n)).toThrow(RangeError);
    expect(() => readCost(1, 1 as unknown as bigint)).toThrow(RangeError);
  });
});

describe("reservationFor", () => {
  it("holds the most a page of `first` records can cost", () => {
    expect(reservationFor(0, 5n)).toBe(0n);
    expect(reservationFor(10, 5n)).toBe(5n);
    expect(reservationFor(250, 5n)).toBe(15n);
    // Whatever the page returns, the charge fits in the reservation.
    for (let returned = 0; returned <= 250; returned++) {
      expect(readCost(returned, 5n)).toBeLessThanOrEqual(reservationFor(250, 5n));
    }
  });
});

describe("fixed prices", () => {
  it("prices an aggregate like 100 records and a lookup like 1 record", () => {
    expect(AGGREGATE_COST).toBe(100);
    expect(RECORD_LOOKUP_COST).toBe(1);
    expect(aggregateCost(4n)).toBe(4n);
    expect(recordLookupCost(4n)).toBe(4n);
    expect(aggregateCost(0n)).toBe(1n);
  });

  it("never makes a lookup cheaper than reading one record through a page", () => {
    for (const price of [0n, 1n, 9n, 1000n]) {
      expect(recordLookupCost(price)).toBeGreaterThanOrEqual(readCost(1, price));
    }
  });
});
