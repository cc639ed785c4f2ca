// The application's PrismaClient. Prisma 7 has no built-in driver: queries go through node-postgres
// via @prisma/adapter-pg. The client is generated into src/generated/prisma (`npm run generate`).
import { PrismaPg } from "@prisma/adapter-pg";

import { PrismaClient } from "../generated/prisma/client.js";
import { pgTarget } from "./postgres-migrate.js";

export type { PrismaClient };

/**
 * A client on its own pool of `poolSize` connections. A `?schema=` in the URL selects the PostgreSQL
 * schema, as it does for migrations. Call `$disconnect()` to close the pool.
 */
export function createPrisma(databaseUrl: string, poolSize = 10): PrismaClient {
  const { pool, schema } = pgTarget(databaseUrl);
  const adapter = new PrismaPg({ ...pool, max: poolSize }, schema ? { schema } : undefined);
  return new PrismaClient({ adapter });
}
