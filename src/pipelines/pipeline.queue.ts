/**
 * The job that runs a pipeline: one per PipelineRun row, whatever triggered it (a manual run, a
 * pipeline's cron schedule, a push of records). The run row exists before the job is sent.
 */
export const PIPELINE_RUN_QUEUE = "pipelines.run";

export interface PipelineRunJob {
  runId: string;
}

/** Each started pipeline's cron schedule (keyed by pipeline id) sends this; its job queues a run. */
export const PIPELINE_SCHEDULE_QUEUE = "pipelines.schedule";

export interface PipelineScheduleJob {
  pipelineId: string;
}
