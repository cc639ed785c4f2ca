// Offline migrations (docs/architecture.md §6) on a real PostgreSQL: a database of our own, created by the
// migration itself, then the generated client and the hand-written CHECK on top of it.
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";

import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

import {
  createMigration,
  findProjectRoot,
  MigrationError,
  migratePostgres,
  migrationsDir,
} from "../../src/db/postgres-migrate.js";
import { createPrisma, type PrismaClient } from "../../src/db/prisma.js";
import { DEFAULT_PLANS, seedPlans } from "../../src/db/seed-plans.js";
import { AccountStatus, PlanCode } from "../../src/generated/prisma/enums.js";
import { baseConfig, withDatabase } from "../support/databases.js";

// loadConfig({ ...process.env, NODE_ENV: "test" }), with the database name swapped per suite.
const baseUrl = baseConfig().DATABASE_URL;

async function onServer<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: withDatabase(baseUrl, "postgres") });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function dropDatabase(name: string): Promise<void> {
  await onServer(async (client) => {
    await client.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", [name]);
    await client.query(`DROP DATABASE IF EXISTS "${name}"`);
  });
}

const shadowDatabases = () =>
  onServer(async (client) => {
    const { rows } = await client.query<{ datname: string }>(
      "SELECT datname FROM pg_database WHERE datname LIKE 'prisma_migrate_shadow_db_%'",
    );
    return rows.map((r) => r.datname).sort();
  });

describe("migratePostgres", () => {
  const database = `datahus_migrate_${randomBytes(6).toString("hex")}`;
  const url = withDatabase(baseUrl, database);
  let prisma: PrismaClient | undefined;

  afterAll(async () => {
    await prisma?.$disconnect();
    await dropDatabase(database);
  });

  it("creates the database and applies every migration, recorded as prisma migrate deploy does", async () => {
    const dir = migrationsDir();
    const names = (await readdir(dir, { withFileTypes: true }))
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
      .sort();
    expect(names.length).toBeGreaterThan(0);
    const logs: string[] = [];

    const { applied } = await migratePostgres(url, (msg) => logs.push(msg));

    expect(applied).toEqual(names);
    expect(logs).toContain(`Creating database ${database}`);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const { rows } = await db.query(
        `SELECT migration_name, checksum, finished_at, rolled_back_at, applied_steps_count, logs
         FROM _prisma_migrations ORDER BY migration_name`,
      );
      expect(rows.map((r) => r.migration_name)).toEqual(names);
      for (const row of rows) {
        // `prisma migrate deploy` compares this checksum with the file: equal means no drift warning.
        const sql = await readFile(join(dir, row.migration_name, "migration.sql"));
        expect(row.checksum).toBe(createHash("sha256").update(sql).digest("hex"));
        expect(row.finished_at).toBeInstanceOf(Date);
        expect(row.rolled_back_at).toBeNull();
        expect(row.applied_steps_count).toBe(1);
        expect(row.logs).toBeNull();
      }
    } finally {
      await db.end();
    }
  });

  it("applies nothing the second time", async () => {
    const logs: string[] = [];
    expect(await migratePostgres(url, (msg) => logs.push(msg))).toEqual({ applied: [] });
    expect(logs).toEqual(["No pending migrations"]);
  });

  it("seeds the four plans once, however often it runs", async () => {
    prisma = createPrisma(url, 2);
    const [first] = await Promise.all([seedPlans(prisma), seedPlans(prisma)]);
    const again = await seedPlans(prisma);

    expect(await prisma.plan.count()).toBe(4);
    expect(Object.keys(again).sort()).toEqual(Object.values(PlanCode).sort());
    expect(again.FREE).toMatchObject({ requestsPerMinute: 100, startingCredits: 100n });
    expect(again.BASIC.requestsPerMinute).toBe(1_000);
    expect(again.PRO.requestsPerMinute).toBe(10_000);
    expect(again.ENTERPRISE.requestsPerMinute).toBe(10_000);
    expect(again.FREE.id).toBe(first.FREE.id);
    expect(DEFAULT_PLANS).toHaveLength(4);
  });

  it("keeps plans an operator changed", async () => {
    await prisma!.plan.update({ where: { code: PlanCode.PRO }, data: { requestsPerMinute: 12_345 } });
    const plans = await seedPlans(prisma!);
    expect(plans.PRO.requestsPerMinute).toBe(12_345);
  });

  it("creates accounts through the generated client, with time-ordered ids", async () => {
    const plans = await seedPlans(prisma!);
    const created = [];
    for (let i = 0; i < 20; i++) {
      created.push(
        await prisma!.account.create({
          data: { name: `Acme ${i}`, slug: `acme-${i}`, planId: plans.FREE.id },
        }),
      );
    }

    const first = created[0]!;
    expect(first).toMatchObject({ creditBalance: 0n, status: AccountStatus.ACTIVE, suspendedAt: null });
    expect(first.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Keyset pagination by id relies on this: ids sort in creation order, in SQL too.
    const ids = created.map((a) => a.id);
    expect([...ids].sort()).toEqual(ids);
    const paged = await prisma!.account.findMany({ orderBy: { id: "asc" }, select: { id: true } });
    expect(paged.map((a) => a.id)).toEqual(ids);

    const withPlan = await prisma!.account.findUniqueOrThrow({
      where: { slug: "acme-0" },
      include: { plan: true },
    });
    expect(withPlan.plan.code).toBe(PlanCode.FREE);
  });

  it("refuses a negative credit balance (CHECK constraint in the migration SQL)", async () => {
    const account = await prisma!.account.findUniqueOrThrow({ where: { slug: "acme-0" } });

    await expect(
      prisma!.account.update({ where: { id: account.id }, data: { creditBalance: -1n } }),
    ).rejects.toThrow(/accounts_credit_balance_check/);
    await expect(
      prisma!
        .$executeRaw`UPDATE accounts SET credit_balance = credit_balance - 1 WHERE id = ${account.id}::uuid`,
    ).rejects.toThrow(/accounts_credit_balance_check/);

    await prisma!.account.update({ where: { id: account.id }, data: { creditBalance: 5n } });
    const after = await prisma!.account.findUniqueOrThrow({ where: { id: account.id } });
    expect(after.creditBalance).toBe(5n);
  });
});

describe("a PostgreSQL schema in the URL (?schema=)", () => {
  const database = `datahus_schema_${randomBytes(6).toString("hex")}`;
  const url = `${withDatabase(baseUrl, database)}?schema=tenant_a`;

  afterAll(() => dropDatabase(database));

  it("migrates into that schema, and the client and raw SQL use it", async () => {
    await migratePostgres(url);
    const prisma = createPrisma(url, 1);
    try {
      await seedPlans(prisma);
      const tables = await prisma.$queryRaw<{ schema: string }[]>`
        SELECT table_schema AS schema FROM information_schema.tables WHERE table_name = 'plans'`;
      expect(tables).toEqual([{ schema: "tenant_a" }]);
      expect(await prisma.$queryRaw`SELECT count(*)::int AS n FROM plans`).toEqual([{ n: 4 }]);
      expect(await prisma.plan.count()).toBe(4);
    } finally {
      await prisma.$disconnect();
    }
  });
});

describe("hand-written migration SQL", () => {
  const database = `datahus_handsql_${randomBytes(6).toString("hex")}`;
  const url = withDatabase(baseUrl, database);
  let root: string;

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "datahus-handsql-"));
    await cp(join(findProjectRoot(), "prisma"), join(root, "prisma"), { recursive: true });
    await migratePostgres(url, () => {}, { root });
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await dropDatabase(database);
  });

  async function addMigration(name: string, sql: string): Promise<void> {
    await mkdir(join(migrationsDir(root), name));
    await writeFile(join(migrationsDir(root), name, "migration.sql"), sql);
  }

  it("runs as one script: semicolons in comments and function bodies are fine", async () => {
    await addMigration(
      "29990101000000_function",
      `-- A comment; with semicolons; in it.
       CREATE FUNCTION datahus_answer() RETURNS int LANGUAGE plpgsql AS $$
       BEGIN
         RETURN 42;
       END;
       $$;`,
    );
    expect(await migratePostgres(url, () => {}, { root })).toEqual({ applied: ["29990101000000_function"] });
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect((await db.query("SELECT datahus_answer() AS n")).rows).toEqual([{ n: 42 }]);
    } finally {
      await db.end();
    }
  });

  it("applies all of a failing migration or nothing, and names it in the error", async () => {
    await addMigration("29990102000000_broken", `CREATE TABLE half_done (x int);\nSELECT 1 / 0;`);

    const failure = await migratePostgres(url, () => {}, { root }).catch((e: unknown) => e);

    expect(failure).toBeInstanceOf(MigrationError);
    expect((failure as MigrationError).message).toMatch(/division by zero/);
    expect((failure as MigrationError).message).toContain("29990102000000_broken");
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      expect((await db.query("SELECT to_regclass('half_done') AS t")).rows).toEqual([{ t: null }]);
    } finally {
      await db.end();
    }
  });
});

describe("createMigration (scripts/prisma-migrate-diff.mjs)", () => {
  const database = `datahus_diff_${randomBytes(6).toString("hex")}`;
  const url = withDatabase(baseUrl, database);
  let root: string;
  let shadowsBefore: string[];

  beforeAll(async () => {
    // A copy of the project's schema and migrations, so the test can change them.
    root = await mkdtemp(join(tmpdir(), "datahus-diff-"));
    await cp(join(findProjectRoot(), "prisma"), join(root, "prisma"), { recursive: true });
    shadowsBefore = await shadowDatabases();
  });

  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
    await dropDatabase(database);
  });

  it("finds nothing to write when the schema matches the migrations", async () => {
    expect(await createMigration(url, "nothing", { root })).toBeNull();
    expect(await readdir(migrationsDir(root))).toEqual(await readdir(migrationsDir()));
  });

  it("writes the SQL for a schema change, which then applies on top of the existing migrations", async () => {
    const schemaPath = join(root, "prisma", "schema.prisma");
    const schema = await readFile(schemaPath, "utf8");
    await writeFile(
      schemaPath,
      schema.replace(
        'requestsPerMinute Int       @map("requests_per_minute")',
        'requestsPerMinute Int       @map("requests_per_minute")\n  description       String?',
      ),
    );
    await migratePostgres(url, () => {}, { root });

    const result = await createMigration(url, "plan_description", { root });

    expect(result).not.toBeNull();
    expect(result!.directory).toMatch(/[/\\]\d{14}_plan_description$/);
    expect(result!.sql).toContain('ALTER TABLE "plans" ADD COLUMN     "description" TEXT;');
    expect(await readFile(join(result!.directory, "migration.sql"), "utf8")).toBe(result!.sql);
    const { applied } = await migratePostgres(url, () => {}, { root });
    expect(applied).toEqual([result!.directory.split(/[/\\]/).pop()]);
    expect(await createMigration(url, "again", { root })).toBeNull();
  });

  it("writes an empty migration for hand-written SQL when asked", async () => {
    const result = await createMigration(url, "by_hand", { root, draft: true });
    expect(result!.sql).toBe("-- This is an empty migration.\n");
  });

  it("leaves no shadow database behind", async () => {
    expect(await shadowDatabases()).toEqual(shadowsBefore);
  });
});
