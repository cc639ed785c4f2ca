import { randomBytes } from "node:crypto";
import { Prisma } from "../generated/prisma/client.js";

/**
 * A UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then randomness. Sorting by it sorts by
 * creation time, which keyset paging by id relies on. Prisma generates the same for rows it
 * creates; this is for ids needed before the row exists (e.g. to name a dataset's table).
 */
export function uuidv7(nowMs: number = Date.now()): string {
  const bytes = randomBytes(16);
  bytes.writeUIntBE(nowMs, 0, 6);
  bytes[6] = (bytes[6]! & 0x0f) | 0x70;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A UUIDv7 made by PostgreSQL in a statement from `ms` (fractional Unix milliseconds, read with
 * clock_timestamp() in the statement after it took a row lock): 48 bits of milliseconds, the
 * version, 12 bits of the sub-millisecond fraction (RFC 9562 method 3), then randomness. Rows
 * written under one lock then sort by id in the order their balances were written, which keyset
 * pages and `balance_after` need; an id made in JavaScript is taken before waiting for the lock.
 */
export function uuidv7InStatement(ms: Prisma.Sql): Prisma.Sql {
  return Prisma.sql`encode(
      substring(int8send(floor(${ms})::bigint) FROM 3)
      || int2send((28672 + floor((${ms} - floor(${ms})) * 4096))::int2)
      || substring(uuid_send(gen_random_uuid()) FROM 9), 'hex')::uuid`;
}
