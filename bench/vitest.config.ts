// Benchmarks run with the test settings (graphql alias, the migrated template database from the
// global setup) but one file at a time: files running side by side on a 2-core machine would
// measure each other.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";
import root from "../vitest.config.js";

const TEN_MINUTES = 10 * 60_000;

export default defineConfig({
  ...root,
  // Paths below (and the root config's globalSetup) are relative to the project, not to bench/.
  root: fileURLToPath(new URL("..", import.meta.url)),
  test: {
    ...root.test,
    include: ["bench/**/*.bench.ts"],
    fileParallelism: false,
    // As the API is deployed (Dockerfile, scripts/start.sh): where a bench runs it in its own
    // process (the embedded engine), it collects garbage as it would there (relay-collection.ts).
    execArgv: ["--expose-gc"],
    testTimeout: TEN_MINUTES,
    hookTimeout: TEN_MINUTES,
  },
});
