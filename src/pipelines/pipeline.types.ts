import { Field, Float, ObjectType, registerEnumType } from "type-graphql";
import {
  NewFieldPolicy,
  PipelineMode,
  PipelineRunStatus,
  PipelineRunTrigger,
  type Pipeline as PipelineRow,
  type PipelineRun as PipelineRunRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(PipelineMode, {
  name: "PipelineMode",
  description: "FULL_REFRESH replaces the dataset atomically; INCREMENTAL upserts by key.",
});
registerEnumType(NewFieldPolicy, { name: "NewFieldPolicy" });
registerEnumType(PipelineRunStatus, { name: "PipelineRunStatus" });
registerEnumType(PipelineRunTrigger, { name: "PipelineRunTrigger" });

@ObjectType({ implements: Node, description: "Moves a source's data into a dataset through steps." })
export class Pipeline extends Node {
  accountId!: string;
  sourceId!: string;
  datasetId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => PipelineMode)
  mode!: PipelineMode;

  @Field(() => String, { nullable: true })
  schedule!: string | null;

  @Field(() => Boolean)
  enabled!: boolean;

  @Field(() => NewFieldPolicy)
  newFieldPolicy!: NewFieldPolicy;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: PipelineRow): Pipeline {
    return Object.assign(new Pipeline(), {
      id: encodeGlobalId("Pipeline", row.id),
      accountId: row.accountId,
      sourceId: row.sourceId,
      datasetId: row.datasetId,
      name: row.name,
      mode: row.mode,
      schedule: row.schedule,
      enabled: row.enabled,
      newFieldPolicy: row.newFieldPolicy,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType({ implements: Node, description: "One execution of a pipeline." })
export class PipelineRun extends Node {
  pipelineId!: string;

  @Field(() => PipelineRunStatus)
  status!: PipelineRunStatus;

  @Field(() => PipelineRunTrigger)
  trigger!: PipelineRunTrigger;

  @Field(() => Date, { nullable: true })
  startedAt!: Date | null;

  @Field(() => Date, { nullable: true })
  finishedAt!: Date | null;

  @Field(() => SafeInt)
  rowsRead!: number;

  @Field(() => SafeInt)
  rowsWritten!: number;

  @Field(() => SafeInt)
  rowsRejected!: number;

  @Field(() => SafeInt)
  bytesRead!: number;

  @Field(() => Float, { nullable: true, description: "0 to 1 while running." })
  progress!: number | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: PipelineRunRow): PipelineRun {
    return Object.assign(new PipelineRun(), {
      id: encodeGlobalId("PipelineRun", row.id),
      pipelineId: row.pipelineId,
      status: row.status,
      trigger: row.trigger,
      startedAt: row.startedAt,
      finishedAt: row.finishedAt,
      rowsRead: safeInt(row.rowsRead),
      rowsWritten: safeInt(row.rowsWritten),
      rowsRejected: safeInt(row.rowsRejected),
      bytesRead: safeInt(row.bytesRead),
      progress: row.progress,
      error: row.error,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class PipelineConnection extends ConnectionType(Pipeline) {}

@ObjectType()
export class PipelineRunConnection extends ConnectionType(PipelineRun) {}
