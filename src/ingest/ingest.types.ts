import { Field, ID, Int, ObjectType } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";

@ObjectType({ description: "What upsertRecords or deleteRecords changed." })
export class RecordCorrection {
  @Field(() => Dataset, { description: "The dataset after the change: its version moved when rows changed." })
  dataset!: Dataset;

  @Field(() => Int, { description: "Records written, or deleted (keys with no live record change nothing)." })
  changedRows!: number;
}

@ObjectType({ description: "A push accepted: its records are stored and a PUSH run is queued to load them." })
export class IngestRecordsPayload {
  @Field(() => ID, { description: "The queued PipelineRun; follow it with node(id:) or pipelineRuns." })
  runId!: string;

  @Field(() => Int, {
    description: "Records in the push, each read by the run (non-objects are rejected there).",
  })
  records!: number;
}
