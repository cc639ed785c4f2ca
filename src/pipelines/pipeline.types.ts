import { GraphQLJSON } from "graphql-scalars";
import { Field, Float, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  DuplicateKeyPolicy,
  LogLevel,
  NewFieldPolicy,
  PipelineMode,
  PipelineRunStatus,
  PipelineRunTrigger,
  type Pipeline as PipelineRow,
  type PipelineLog as PipelineLogRow,
  type PipelineRun as PipelineRunRow,
} from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(PipelineMode, {
  name: "PipelineMode",
  description: "FULL_REFRESH replaces the dataset atomically; INCREMENTAL upserts by key.",
});
registerEnumType(NewFieldPolicy, {
  name: "NewFieldPolicy",
  description:
    "What a run does with a source field the dataset lacks: IGNORE (listed on the run), ADD_COLUMN (a nullable STRING column), FAIL.",
});
registerEnumType(DuplicateKeyPolicy, {
  name: "DuplicateKeyPolicy",
  description:
    "Rows of one load that share a key: LAST_WINS (the last row is loaded), FIRST_WINS (the first), QUARANTINE (the first is loaded, later ones are quarantined). Loaded-over and skipped rows count as rowsDuplicate.",
});
registerEnumType(LogLevel, { name: "LogLevel" });
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

  @Field(() => DuplicateKeyPolicy)
  duplicateKeys!: DuplicateKeyPolicy;

  @Field(() => Boolean, { description: "Whether rows with an empty text key are loaded (else quarantined)." })
  allowEmptyKeys!: boolean;

  @Field(() => String, {
    nullable: true,
    description: "A STRING key column each run fills with a generated key (the row's file and number).",
  })
  rowKeyColumn!: string | null;

  @Field(() => Float, {
    description:
      "FULL_REFRESH: a run fails, leaving the dataset as it was, when it would publish no row or fewer than this share of the live rows. 0 turns the check off.",
  })
  minLiveRowRatio!: number;

  @Field(() => GraphQLJSON, { description: "The declarative steps, as saved." })
  steps!: unknown;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

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
      duplicateKeys: row.duplicateKeys,
      allowEmptyKeys: row.allowEmptyKeys,
      rowKeyColumn: row.rowKeyColumn,
      minLiveRowRatio: row.minLiveRowRatio,
      steps: row.steps,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
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

  @Field(() => SafeInt, { description: "Rows quarantined, with their reasons (rejectedRows)." })
  rowsRejected!: number;

  @Field(() => SafeInt, { description: "Rows a filter step skipped." })
  rowsFiltered!: number;

  @Field(() => SafeInt, {
    description:
      "Rows not loaded because another row of this load had their key (see duplicateKeys). Once the run ends, rowsRead = rowsWritten + rowsRejected + rowsFiltered + rowsDuplicate.",
  })
  rowsDuplicate!: number;

  @Field(() => SafeInt)
  bytesRead!: number;

  @Field(() => Float, { nullable: true, description: "0 to 1 while running." })
  progress!: number | null;

  @Field(() => String, { nullable: true })
  error!: string | null;

  @Field(() => [String], { description: "Source fields the dataset did not have when the run read them." })
  newFields!: string[];

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
      rowsFiltered: safeInt(row.rowsFiltered),
      rowsDuplicate: safeInt(row.rowsDuplicate),
      bytesRead: safeInt(row.bytesRead),
      progress: row.progress,
      error: row.error,
      newFields: row.newFields,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType({ implements: Node, description: "A line of a pipeline run's log." })
export class PipelineLog extends Node {
  runId!: string;

  @Field(() => LogLevel)
  level!: LogLevel;

  @Field(() => String)
  message!: string;

  @Field(() => GraphQLJSON, { nullable: true, description: "Counters and details; never secrets." })
  data!: unknown;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: PipelineLogRow): PipelineLog {
    return Object.assign(new PipelineLog(), {
      id: encodeGlobalId("PipelineLog", row.id),
      runId: row.runId,
      level: row.level,
      message: row.message,
      data: row.data,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType({ description: "A row a run could not load, kept in the quarantine with its reasons." })
export class RejectedRow {
  @Field(() => String, {
    description: "Where the row came from (a file name); empty when the source has one part.",
  })
  origin!: string;

  @Field(() => SafeInt, { description: "The row's number within its origin, from 1." })
  rowNumber!: number;

  @Field(() => String, { description: "The row as read: source text, or the record as JSON." })
  raw!: string;

  @Field(() => [String])
  reasons!: string[];
}

@ObjectType({ description: "What the worker consuming a STREAM source last reported (about once a second)." })
export class StreamMetrics {
  @Field({ description: "A worker is consuming the stream." })
  consuming!: boolean;

  @Field({
    description:
      "Writes to the dataset fail (ClickHouse down or slow): consumption waits; nothing is acknowledged or dropped.",
  })
  paused!: boolean;

  @Field(() => SafeInt, {
    nullable: true,
    description:
      "Messages not yet in the dataset: waiting at the broker plus taken and not yet acknowledged. Null when the broker cannot tell (MQTT) and none are held.",
  })
  lag!: number | null;

  @Field(() => Float, { description: "Messages stored per second over the last few seconds." })
  messagesPerSecond!: number;

  @Field(() => Date, { nullable: true, description: "When the last message was taken from the broker." })
  lastMessageAt!: Date | null;

  @Field(() => Date, { description: "When the worker reported; an old report means no worker consumes." })
  updatedAt!: Date;
}

@ObjectType({ description: "How a source's syncs have gone, over all its pipelines." })
export class SourceMetrics {
  @Field(() => Int)
  pipelines!: number;

  @Field(() => Int)
  runs!: number;

  @Field(() => Int)
  failedRuns!: number;

  @Field(() => SafeInt, { description: "Rows written by successful runs." })
  rowsWritten!: number;

  @Field(() => SafeInt, { description: "Rows rejected by successful runs." })
  rowsRejected!: number;

  @Field(() => Date, { nullable: true, description: "When the last run finished." })
  lastSyncAt!: Date | null;

  @Field(() => PipelineRunStatus, { nullable: true })
  lastStatus!: PipelineRunStatus | null;

  @Field(() => String, { nullable: true })
  lastError!: string | null;

  @Field(() => StreamMetrics, { nullable: true, description: "STREAM sources only." })
  stream!: StreamMetrics | null;
}

@InputType()
export class CreatePipelineInput {
  @Field(() => ID)
  sourceId!: string;

  @Field(() => ID)
  datasetId!: string;

  @Field(() => String)
  name!: string;

  @Field(() => GraphQLJSON, {
    description: "Declarative steps (select, rename, cast, trim, default, filter, derive, dedupe, validate).",
  })
  steps!: unknown;

  @Field(() => PipelineMode, {
    nullable: true,
    description: "Default FULL_REFRESH (INCREMENTAL for PUSH sources).",
  })
  mode?: PipelineMode | null;

  @Field(() => String, { nullable: true, description: "Cron (UTC) used once the pipeline is started." })
  schedule?: string | null;

  @Field(() => NewFieldPolicy, { nullable: true, description: "Default IGNORE." })
  newFieldPolicy?: NewFieldPolicy | null;

  @Field(() => DuplicateKeyPolicy, { nullable: true, description: "Default LAST_WINS." })
  duplicateKeys?: DuplicateKeyPolicy | null;

  @Field(() => Boolean, { nullable: true, description: "Default false." })
  allowEmptyKeys?: boolean | null;

  @Field(() => String, { nullable: true, description: "Default none." })
  rowKeyColumn?: string | null;

  @Field(() => Float, { nullable: true, description: "Default 0.5." })
  minLiveRowRatio?: number | null;
}

@InputType()
export class UpdatePipelineInput {
  @Field(() => String, { nullable: true })
  name?: string | null;

  @Field(() => GraphQLJSON, { nullable: true })
  steps?: unknown;

  @Field(() => PipelineMode, { nullable: true })
  mode?: PipelineMode | null;

  @Field(() => String, { nullable: true, description: "Null removes the schedule." })
  schedule?: string | null;

  @Field(() => NewFieldPolicy, { nullable: true })
  newFieldPolicy?: NewFieldPolicy | null;

  @Field(() => DuplicateKeyPolicy, { nullable: true })
  duplicateKeys?: DuplicateKeyPolicy | null;

  @Field(() => Boolean, { nullable: true })
  allowEmptyKeys?: boolean | null;

  @Field(() => String, { nullable: true, description: "An empty string removes it." })
  rowKeyColumn?: string | null;

  @Field(() => Float, { nullable: true })
  minLiveRowRatio?: number | null;
}

@ObjectType()
export class PipelineConnection extends ConnectionType(Pipeline) {}

@ObjectType()
export class PipelineRunConnection extends ConnectionType(PipelineRun) {}

@ObjectType()
export class PipelineLogConnection extends ConnectionType(PipelineLog) {}

@ObjectType()
export class RejectedRowConnection extends ConnectionType(RejectedRow) {}
