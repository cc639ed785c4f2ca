import { GraphQLSafeInt } from "graphql-scalars";

/**
 * Credits and counters are BigInt in PostgreSQL. GraphQL's Int is 32-bit, so they are exposed
 * as SafeInt (integers up to 2^53 - 1, sent as JSON numbers). Values beyond that cannot occur
 * for credits or row counts in practice; if one does, serialising it fails loudly.
 */
export const SafeInt = GraphQLSafeInt;

export function safeInt(value: bigint): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
    throw new RangeError(`Integer ${value} exceeds the SafeInt range`);
  }
  return Number(value);
}
