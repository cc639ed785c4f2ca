// What a read costs, in credits. Pure: no I/O, no clock, so the rules are tested on their own.
//
// METERED datasets are priced per started block of 100 records (`pricePer100Records`). A read is
// charged for what it returned, after a reservation sized for what it could return (`first`).

const BLOCK = 100;

/**
 * Fixed prices for operations that are not a page of records, expressed in records so that they
 * follow the dataset's own price: charge `readCost(AGGREGATE_COST, price)`, or use the helpers
 * below.
 *
 * - An aggregate (count, sum, group-by...) costs what reading 100 records costs: one block. It
 *   returns a summary, not the rows, so it is cheap; but it is never free, since a summary is
 *   still a view of data someone sells.
 * - A lookup of one record by key costs what reading 1 record through a connection costs (also
 *   one block). A lookup must never be cheaper than `records(first: 1)`, or clients would page
 *   through a dataset by key to save credits.
 */
export const AGGREGATE_COST = 100;
export const RECORD_LOOKUP_COST = 1;

function assertPrice(pricePer100: bigint): void {
  if (typeof pricePer100 !== "bigint" || pricePer100 < 0n) {
    throw new RangeError(`pricePer100 must be a non-negative bigint, got ${String(pricePer100)}`);
  }
}

/**
 * Credits for reading `records` records: nothing for an empty read, otherwise every started block
 * of 100 at `pricePer100`, and at least 1 credit. The minimum only matters at price 0: a METERED
 * dataset is never free to read (a free dataset is published as OPEN, which is not charged).
 */
export function readCost(records: number, pricePer100: bigint): bigint {
  if (!Number.isSafeInteger(records) || records < 0) {
    throw new RangeError(`records must be a non-negative integer, got ${records}`);
  }
  assertPrice(pricePer100);
  if (records === 0) return 0n;
  const blocks = BigInt(Math.ceil(records / BLOCK));
  const cost = blocks * pricePer100;
  return cost > 1n ? cost : 1n;
}

/** What to hold before a page of up to `first` records is read: the most that page can cost. */
export function reservationFor(first: number, pricePer100: bigint): bigint {
  return readCost(first, pricePer100);
}

/** Credits for one aggregate query on a dataset priced at `pricePer100`. */
export function aggregateCost(pricePer100: bigint): bigint {
  return readCost(AGGREGATE_COST, pricePer100);
}

/** Credits for one record looked up by key on a dataset priced at `pricePer100`. */
export function recordLookupCost(pricePer100: bigint): bigint {
  return readCost(RECORD_LOOKUP_COST, pricePer100);
}
