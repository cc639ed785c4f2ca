// Once per test run: a freshly migrated template database with the plans seeded. Test files
// clone it (test/support/databases.ts). Services themselves are started by scripts/test.sh.
import { createPrisma } from "../../src/db/prisma.js";
import { migratePostgres } from "../../src/db/postgres-migrate.js";
import { seedPlans } from "../../src/db/seed-plans.js";
import { TEMPLATE_DATABASE, baseConfig, onServer, withDatabase } from "./databases.js";

export default async function setup(): Promise<void> {
  const config = baseConfig();
  await onServer(config.DATABASE_URL, [`DROP DATABASE IF EXISTS "${TEMPLATE_DATABASE}" WITH (FORCE)`]);
  const url = withDatabase(config.DATABASE_URL, TEMPLATE_DATABASE);
  await migratePostgres(url);
  const prisma = createPrisma(url, 1);
  try {
    await seedPlans(prisma);
  } finally {
    await prisma.$disconnect();
  }
}
