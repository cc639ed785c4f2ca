import { releaseStaleHoldsJob } from "../credits/credit.jobs.js";
import { pruneIngestBatchesJob } from "../ingest/ingest.jobs.js";
import { renewPurchasesJob } from "../purchases/purchase.jobs.js";
import type { Config } from "../config.js";
import { pipelineDeadRunJob, pipelineRunJob, pipelineScheduleJob } from "../pipelines/pipeline.jobs.js";
import type { Services } from "../services.js";
import type { JobDefinition } from "./boss.js";

/**
 * Every job type the worker runs, given the services they work with. Domains add their
 * definitions here as they gain background work (pipeline syncs, deliveries, exports); the
 * worker needs no other change.
 */
export function jobDefinitions(services: Services, config: Config): JobDefinition[] {
  return [
    releaseStaleHoldsJob(services),
    pruneIngestBatchesJob(services),
    renewPurchasesJob(services),
    services.webhooks.job(),
    pipelineRunJob(services, config),
    pipelineDeadRunJob(services),
    pipelineScheduleJob(services),
    services.drops.job(),
    services.drops.scheduleJob(),
  ] as JobDefinition[];
}
