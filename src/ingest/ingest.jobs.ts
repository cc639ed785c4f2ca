import type { JobDefinition } from "../jobs/boss.js";
import type { Services } from "../services.js";

/** How long a pushed batch is kept after its run finished: time to look at what was sent. */
export const BATCH_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Every hour, drops pushed batches whose run has finished, once they are a day old. */
export function pruneIngestBatchesJob(
  services: Pick<Services, "push">,
  now: () => Date = () => new Date(),
): JobDefinition<Record<string, never>> {
  return {
    queue: "ingest.prune-batches",
    schedule: "17 * * * *",
    options: { retryLimit: 2, expireInSeconds: 600 },
    async handle(_data, { log }) {
      const pruned = await services.push.pruneBatches(new Date(now().getTime() - BATCH_RETENTION_MS));
      if (pruned > 0) log.info({ pruned }, "dropped pushed batches of finished runs");
    },
  };
}
