// The platform fee on one charge. Pure, so the rounding rule has one home and one table of tests.

export const MAX_FEE_BASIS_POINTS = 10_000;

/**
 * The platform's share of `credits` at `basisPoints` (1/100 of a percent), rounded down to the
 * credit: the publisher keeps every fraction, and `credits - fee` is never negative. The split is
 * exact by construction (publisher + platform = what the buyer paid).
 */
export function feeFor(credits: bigint, basisPoints: number): bigint {
  if (!Number.isInteger(basisPoints) || basisPoints < 0 || basisPoints > MAX_FEE_BASIS_POINTS) {
    throw new RangeError(`basisPoints must be an integer in 0..${MAX_FEE_BASIS_POINTS}, got ${basisPoints}`);
  }
  if (credits < 0n) throw new RangeError(`credits must not be negative, got ${credits}`);
  return (credits * BigInt(basisPoints)) / BigInt(MAX_FEE_BASIS_POINTS);
}
