// The pipeline jobs the worker runs: a run (whatever queued it) and a started pipeline's cron tick.
import type { Config } from "../config.js";
import { deadLetterQueue, type JobDefinition } from "../jobs/boss.js";
import type { Services } from "../services.js";
import {
  PIPELINE_RUN_QUEUE,
  PIPELINE_SCHEDULE_QUEUE,
  type PipelineRunJob,
  type PipelineScheduleJob,
} from "./pipeline.queue.js";

type JobConfig = Pick<Config, "PIPELINE_RUN_RETRY_LIMIT" | "PIPELINE_RUN_HEARTBEAT_SECONDS">;

export function pipelineRunJob(services: Services, config: JobConfig): JobDefinition<PipelineRunJob> {
  return {
    queue: PIPELINE_RUN_QUEUE,
    options: {
      retryLimit: config.PIPELINE_RUN_RETRY_LIMIT,
      retryDelay: 2,
      retryBackoff: true,
      retryDelayMax: 300,
      // A big file can take hours; a dead worker is noticed by its missing heartbeat instead.
      expireInSeconds: 12 * 3600,
      heartbeatSeconds: config.PIPELINE_RUN_HEARTBEAT_SECONDS,
    },
    // A manual run should start within a second, not at the default two-second poll.
    work: { pollingIntervalSeconds: 1 },
    deadLetter: true,
    handle: (data, job) => services.runner.handle(data, job),
  };
}

/** Runs whose job used up its retries: fails a run its dead worker left RUNNING. */
export function pipelineDeadRunJob(services: Services): JobDefinition<PipelineRunJob> {
  return {
    queue: deadLetterQueue(PIPELINE_RUN_QUEUE),
    handle: (data) => services.runner.abandon(data),
  };
}

export function pipelineScheduleJob(services: Services): JobDefinition<PipelineScheduleJob> {
  return {
    queue: PIPELINE_SCHEDULE_QUEUE,
    options: { retryLimit: 2 },
    handle: async (data, job) => {
      const run = await services.pipelines.runScheduled(data.pipelineId);
      job.log.info({ pipelineId: data.pipelineId, runId: run?.id ?? null }, "scheduled pipeline run");
    },
  };
}
