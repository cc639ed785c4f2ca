#!/usr/bin/env node
// `prisma generate` without network access (docs/architecture.md §6).
//
// Every Prisma 7 CLI command first makes sure a native `schema-engine` binary is present and
// downloads it when it is not, which fails offline. `generate` never runs that binary, so we point
// PRISMA_SCHEMA_ENGINE_BINARY at any executable and the download is skipped. CHECKPOINT_DISABLE
// turns off the telemetry/update check, the CLI's only other network call.
// Extra arguments are passed through, e.g. `npm run generate -- --watch`.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const require = createRequire(join(root, "package.json"));
const cli = join(dirname(require.resolve("prisma/package.json")), "build", "index.js");

// Keep a real engine path if the user configured one; otherwise any executable will do.
const engine =
  process.env.PRISMA_SCHEMA_ENGINE_BINARY && existsSync(process.env.PRISMA_SCHEMA_ENGINE_BINARY)
    ? process.env.PRISMA_SCHEMA_ENGINE_BINARY
    : process.execPath;

const result = spawnSync(process.execPath, [cli, "generate", ...process.argv.slice(2)], {
  cwd: root,
  stdio: "inherit",
  env: {
    ...process.env,
    PRISMA_SCHEMA_ENGINE_BINARY: engine,
    CHECKPOINT_DISABLE: "1",
    PRISMA_HIDE_UPDATE_MESSAGE: "1",
  },
});
if (result.error) throw result.error;
process.exit(result.status ?? 1);
