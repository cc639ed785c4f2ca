import type { JobDefinition } from "./boss.js";

/**
 * Every job type the worker runs. Domains add their definitions here as they gain background
 * work (pipeline syncs, deliveries, exports); the worker needs no other change.
 */
export const jobDefinitions: readonly JobDefinition[] = [];
