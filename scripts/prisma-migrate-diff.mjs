#!/usr/bin/env node
// Writes a new migration offline: the SQL from prisma/migrations to prisma/schema.prisma, into
// prisma/migrations/<timestamp>_<name>/migration.sql (what `prisma migrate dev --create-only` does,
// which needs the native schema engine and so a download).
//
//   node scripts/prisma-migrate-diff.mjs <name>           # nothing is written when nothing changed
//   node scripts/prisma-migrate-diff.mjs <name> --empty   # an empty migration for hand-written SQL
//
// Needs a PostgreSQL server (DATABASE_URL, default as in src/config.ts): the existing migrations are
// replayed in a temporary shadow database there, which is dropped afterwards. The database itself
// is not touched; apply the new migration with `datahus migrate` or `prisma migrate deploy`.
//
// Runs src/db/postgres-migrate.ts directly (Node >= 22.18 strips types), so no build is needed.
// Like prisma.config.ts, this developer tool reads DATABASE_URL itself: src/config.ts uses
// TypeScript syntax that type stripping cannot run.
import { parseArgs } from "node:util";

import { createMigration } from "../src/db/postgres-migrate.ts";

const DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/datahus";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { empty: { type: "boolean", default: false } },
});
if (positionals.length !== 1) {
  console.error("usage: node scripts/prisma-migrate-diff.mjs <name> [--empty]");
  process.exit(2);
}

const result = await createMigration(process.env.DATABASE_URL || DEFAULT_DATABASE_URL, positionals[0], {
  draft: values.empty,
  log: (msg) => console.error(msg),
});
if (result === null) {
  console.error("The schema matches the migrations: nothing to write.");
} else {
  console.log(result.directory);
}
