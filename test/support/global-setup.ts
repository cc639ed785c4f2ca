// Once per test run: a freshly migrated template database with the plans seeded, which test
// files clone (test/support/databases.ts). Its name is unique to the run, so two runs on one
// machine (a developer's and CI's) never drop each other's template. Services themselves are
// started by scripts/test.sh.
import type { TestProject } from "vitest/node";
import { createPrisma } from "../../src/db/prisma.js";
import { migratePostgres } from "../../src/db/postgres-migrate.js";
import { seedPlans } from "../../src/db/seed-plans.js";
import { createBoss } from "../../src/jobs/boss.js";
import { baseConfig, onServer, uniqueName, withDatabase } from "./databases.js";

declare module "vitest" {
  export interface ProvidedContext {
    templateDatabase: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const config = baseConfig();
  const template = uniqueName("tpl");
  const url = withDatabase(config.DATABASE_URL, template);
  await migratePostgres(url);
  const prisma = createPrisma(url, 1);
  try {
    await seedPlans(prisma);
  } finally {
    await prisma.$disconnect();
  }
  // pg-boss installs its schema on first start; doing it once here saves every test file that.
  const boss = createBoss({ ...config, DATABASE_URL: url }, "api");
  await boss.start();
  await boss.stop({ graceful: false, timeout: 1_000 });
  project.provide("templateDatabase", template);
  return () => onServer(config.DATABASE_URL, [`DROP DATABASE IF EXISTS "${template}" WITH (FORCE)`]);
}
