import type { Pipeline, PipelineRun, PrismaClient } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class PipelineService {
  readonly pipelines: ModelReader<Pipeline>;
  readonly runs: ModelReader<PipelineRun>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.pipelines = new ModelReader(prisma.pipeline, "pipeline", limits);
    this.runs = new ModelReader(prisma.pipelineRun, "pipelineRun", limits);
  }
}
