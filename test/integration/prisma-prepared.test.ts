// Prisma's statements are prepared once per connection (src/db/prisma.ts), and not at all when
// DATABASE_PREPARED_STATEMENTS is off (for poolers that cannot carry them): what PostgreSQL holds
// for the session says which.
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, expect, it } from "vitest";
import { createPrisma, type PrismaClient } from "../../src/db/prisma.js";
import { baseConfig, freshPostgres } from "../support/databases.js";

let db: { url: string; drop(): Promise<void> };
const clients: PrismaClient[] = [];

beforeAll(async () => {
  db = await freshPostgres(baseConfig());
});

afterAll(async () => {
  await Promise.all(clients.map((c) => c.$disconnect()));
  await db?.drop();
});

/** One connection, so that every statement and the check below share a session. */
async function preparedAfterRuns(prepared: boolean) {
  const prisma = createPrisma(db.url, 1, prepared);
  clients.push(prisma);
  for (let i = 0; i < 3; i++) {
    await prisma.plan.findUniqueOrThrow({ where: { code: "FREE" } });
    await prisma.$queryRaw`SELECT count(*) FROM plans WHERE code = ${"FREE"}`;
  }
  return prisma.$queryRaw<{ statement: string }[]>`
    SELECT statement FROM pg_prepared_statements WHERE name LIKE 'datahus\_%'`;
}

it("prepares each statement once per connection", async () => {
  const held = await preparedAfterRuns(true);
  // The model read and the raw query, once each however often they ran (the check itself too).
  expect(held.filter((s) => /"plans"|FROM plans/.test(s.statement))).toHaveLength(2);
});

it("prepares none when turned off", async () => {
  expect(await preparedAfterRuns(false)).toHaveLength(0);
});

it("leaves long IN lists unnamed: each length would be a statement of its own", async () => {
  const prisma = createPrisma(db.url, 1, true);
  clients.push(prisma);
  const ids = (n: number) => Array.from({ length: n }, () => randomUUID());
  await prisma.plan.findMany({ where: { id: { in: ids(3) } } });
  await prisma.plan.findMany({ where: { id: { in: ids(100) } } });
  const held = await prisma.$queryRaw<{ statement: string }[]>`
    SELECT statement FROM pg_prepared_statements WHERE name LIKE 'datahus\_%'`;
  expect(held.filter((s) => s.statement.includes(" IN ("))).toHaveLength(1);
});
