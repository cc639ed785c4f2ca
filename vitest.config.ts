import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  resolve: {
    // graphql ships CJS and ESM builds; type-graphql loads the CJS one. Two copies of graphql in
    // one process break `instanceof` checks, so everything gets the CJS copy.
    alias: [{ find: /^graphql$/, replacement: require.resolve("graphql") }],
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests each own their databases, so files run in parallel safely.
    pool: "forks",
    // vitest's default is one worker per core but one; on a 2-core machine that ran the files one
    // at a time, mostly waiting on the stores (whole suite, both engines: 29.5 min, 17 with two).
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters: ["default"],
  },
});
