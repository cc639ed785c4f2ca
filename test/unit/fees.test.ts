import { describe, expect, it } from "vitest";
import { feeFor } from "../../src/earnings/fees.js";

describe("feeFor", () => {
  it.each([
    [0n, 250, 0n],
    [1n, 250, 0n], // a fraction of a credit stays with the publisher
    [39n, 250, 0n],
    [40n, 250, 1n],
    [99n, 1000, 9n],
    [333n, 500, 16n],
    [100n, 0, 0n],
    [100n, 10_000, 100n],
    [9_007_199_254_740_991n, 275, 247_697_979_505_377n],
  ])("%s credits at %s bp is %s", (credits, bps, fee) => {
    expect(feeFor(credits, bps)).toBe(fee);
    expect(credits - fee).toBeGreaterThanOrEqual(0n);
  });

  it.each([-1, 10_001, 2.5, Number.NaN])("refuses %s basis points", (bps) => {
    expect(() => feeFor(10n, bps)).toThrow(RangeError);
  });

  it("refuses negative credits", () => {
    expect(() => feeFor(-1n, 100)).toThrow(RangeError);
  });
});
