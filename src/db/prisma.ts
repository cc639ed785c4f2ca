// The application's PrismaClient. Prisma 7 has no built-in driver: queries go through node-postgres
// via @prisma/adapter-pg. The client is generated into src/generated/prisma (`npm run generate`).
import { PrismaPg } from "@prisma/adapter-pg";

import { PrismaClient } from "../generated/prisma/client.js";
import { pgTarget } from "./postgres-migrate.js";

export type { PrismaClient };

/**
 * A client on its own pool of `poolSize` connections. A `?schema=` in the URL selects the PostgreSQL
 * schema, as it does for migrations. With `prepared`, statements are prepared once per connection
 * (`statementNames`). Call `$disconnect()` to close the pool.
 */
export function createPrisma(databaseUrl: string, poolSize = 10, prepared = true): PrismaClient {
  const { pool, schema } = pgTarget(databaseUrl);
  const adapter = new PrismaPg(
    { ...pool, max: poolSize },
    { ...(schema ? { schema } : {}), ...(prepared ? { statementNameGenerator: statementNames() } : {}) },
  );
  return new PrismaClient({ adapter });
}

/**
 * Distinct statement texts a process prepares at most, and the most parameters a prepared one
 * takes. Prisma writes `IN ($1,$2,…)` with one parameter per value, so a query over lists of
 * varying length is a new text per length: long lists go unnamed (as every statement did before),
 * and the bound keeps what each connection holds in PostgreSQL small.
 */
const PREPARED_STATEMENTS = 500;
const PREPARED_MAX_PARAMETERS = 32;

/**
 * Names each statement text, so that node-postgres prepares it once per connection and PostgreSQL
 * keeps its parse tree and, after a few runs, its plan. Unnamed, every statement was parsed,
 * analysed and planned again on every run: on the webhook bench that was about a third of
 * PostgreSQL's CPU (pg-boss's job insert, a CTE over a subquery, the most). A name stands for one
 * text per process, which node-postgres requires of a name on a connection.
 */
function statementNames(): (query: { sql: string; args: unknown[] }) => string {
  const names = new Map<string, string>();
  return ({ sql, args }) => {
    let name = names.get(sql);
    if (name === undefined && names.size < PREPARED_STATEMENTS && args.length <= PREPARED_MAX_PARAMETERS) {
      name = `datahus_${names.size}`;
      names.set(sql, name);
    }
    // "" is PostgreSQL's unnamed statement, and node-postgres treats it as no name.
    return name ?? "";
  };
}
