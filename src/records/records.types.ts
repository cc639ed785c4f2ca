import { GraphQLJSON, GraphQLJSONObject } from "graphql-scalars";
import { ArgsType, Field, Float, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import { ConnectionArgs, ConnectionType } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";
import type { Scalar } from "./values.js";
import type { MetricFn as MetricFnName, TimeBucket as TimeBucketName } from "./records.reader.js";
import type { RecordFilter } from "./filter.js";
import type { Dataset as DatasetRow } from "../generated/prisma/client.js";

export enum SortDirection {
  ASC = "ASC",
  DESC = "DESC",
}
registerEnumType(SortDirection, { name: "SortDirection" });

export const TimeBucket = {
  MINUTE: "MINUTE",
  HOUR: "HOUR",
  DAY: "DAY",
  WEEK: "WEEK",
  MONTH: "MONTH",
} as const satisfies Record<TimeBucketName, TimeBucketName>;
registerEnumType(TimeBucket, { name: "TimeBucket", description: "UTC; weeks start on Monday." });

export const MetricFn = {
  COUNT: "COUNT",
  SUM: "SUM",
  AVG: "AVG",
  MIN: "MIN",
  MAX: "MAX",
  UNIQ: "UNIQ",
  QUANTILE: "QUANTILE",
} as const satisfies Record<MetricFnName, MetricFnName>;
registerEnumType(MetricFn, { name: "MetricFn" });

@ObjectType({
  description:
    "One record: its key and its values by column, typed as the column schema says (INT64 and DECIMAL as strings).",
})
export class DataRecord {
  @Field(() => String, {
    description: "The key column's value; for composite keys a JSON array of the values.",
  })
  key!: string;

  @Field(() => GraphQLJSONObject)
  values!: Record<string, unknown>;
}

@ObjectType({
  description: "A dataset's free sample: rows the publisher chose to show before buying. Never charged.",
})
export class DatasetSample {
  @Field(() => Boolean, { description: "Always true: these rows are a sample, not the dataset." })
  isSample!: boolean;

  @Field(() => Int, { description: "The rows offered (fewer come back when fewer match the filter)." })
  size!: number;

  @Field(() => GraphQLJSONObject, { nullable: true, description: "The filter the sample's rows match." })
  filter!: Record<string, unknown> | null;

  @Field(() => [DataRecord])
  rows!: DataRecord[];
}

@ObjectType()
export class DataRecordConnection extends ConnectionType(DataRecord) {
  /** What totalCount needs, resolved only when asked for: the dataset row the page was read from. */
  dataset!: DatasetRow;
  filter!: RecordFilter | null;
}

@InputType({
  description:
    "A condition on one column (column plus one operator), or a combination with and/or/not. Values are JSON: numbers, strings (for INT64, DECIMAL, DATE, DATETIME too), booleans, null.",
})
export class RecordFilterInput implements RecordFilter {
  @Field(() => [RecordFilterInput], { nullable: true })
  and?: RecordFilterInput[] | null;

  @Field(() => [RecordFilterInput], { nullable: true })
  or?: RecordFilterInput[] | null;

  @Field(() => RecordFilterInput, { nullable: true })
  not?: RecordFilterInput | null;

  @Field(() => String, { nullable: true })
  column?: string | null;

  @Field(() => GraphQLJSON, { nullable: true })
  eq?: Scalar;

  @Field(() => GraphQLJSON, { nullable: true })
  ne?: Scalar;

  @Field(() => GraphQLJSON, { nullable: true })
  gt?: Scalar;

  @Field(() => GraphQLJSON, { nullable: true })
  gte?: Scalar;

  @Field(() => GraphQLJSON, { nullable: true })
  lt?: Scalar;

  @Field(() => GraphQLJSON, { nullable: true })
  lte?: Scalar;

  @Field(() => [GraphQLJSON], { nullable: true })
  in?: Scalar[] | null;

  @Field(() => String, { nullable: true, description: "STRING columns: occurs literally, case-sensitive." })
  contains?: string | null;

  @Field(() => String, { nullable: true })
  startsWith?: string | null;

  @Field(() => Boolean, { nullable: true })
  isNull?: boolean | null;
}

@InputType()
export class RecordOrderInput {
  @Field(() => String)
  column!: string;

  @Field(() => SortDirection, { defaultValue: SortDirection.ASC })
  direction!: SortDirection;
}

@ArgsType()
export class RecordsArgs extends ConnectionArgs {
  @Field(() => RecordFilterInput, { nullable: true })
  filter?: RecordFilterInput | null;

  @Field(() => [RecordOrderInput], {
    nullable: true,
    description: "Up to 3 columns; the key always breaks ties. Cursors carry the sort values.",
  })
  orderBy?: RecordOrderInput[] | null;

  @Field(() => [String], {
    nullable: true,
    description: "Only these columns in each record's `values` (default: all); ClickHouse reads no others.",
  })
  columns?: string[] | null;
}

@InputType()
export class GroupByInput {
  @Field(() => String)
  column!: string;

  @Field(() => TimeBucket, {
    nullable: true,
    description: "DATE and DATETIME columns: group by time bucket.",
  })
  bucket?: TimeBucketName | null;
}

@InputType()
export class MetricInput {
  @Field(() => MetricFn)
  fn!: MetricFnName;

  @Field(() => String, { nullable: true, description: "Needed except for COUNT (rows)." })
  column?: string | null;

  @Field(() => Float, { nullable: true, description: "QUANTILE: the level, between 0 and 1." })
  q?: number | null;

  @Field(() => String, { nullable: true, description: "The metric's key in the result." })
  alias?: string | null;
}

@ObjectType()
export class AggregateRow {
  @Field(() => GraphQLJSONObject, { description: "The group's values by column (buckets at their start)." })
  group!: Record<string, unknown>;

  @Field(() => GraphQLJSONObject, { description: "The metrics by alias." })
  metrics!: Record<string, unknown>;
}

@ObjectType()
export class AggregateRowConnection extends ConnectionType(AggregateRow) {}

@InputType({ description: "A trailing span of time ending now, on a DATETIME column." })
export class AggregateWindowInput {
  @Field(() => String, { description: "The DATETIME column each row's time is in." })
  column!: string;

  @Field(() => String, {
    description: 'The span: a whole number then s, m, h or d ("5m", "1h", "24h"; at most 366d).',
  })
  last!: string;
}

@ArgsType()
export class AggregateArgsType {
  @Field(() => [GroupByInput], { nullable: true })
  groupBy?: GroupByInput[] | null;

  @Field(() => [MetricInput])
  metrics!: MetricInput[];

  @Field(() => RecordFilterInput, { nullable: true })
  filter?: RecordFilterInput | null;

  @Field(() => AggregateWindowInput, {
    nullable: true,
    description: "Only rows in this recent window (each page is computed at its own now).",
  })
  window?: AggregateWindowInput | null;

  @Field(() => Int)
  first!: number;

  @Field(() => String, { nullable: true })
  after?: string | null;
}

@ObjectType({ description: "What a read would cost now. Nothing is read or charged to answer it." })
export class Quote {
  @Field(() => SafeInt, { description: "Credits reserved up front for `first` records." })
  maxCredits!: number;

  @Field(() => SafeInt, { description: "Records the read would return now." })
  records!: number;

  @Field(() => SafeInt, { description: "What those records would cost." })
  credits!: number;

  @Field(() => SafeInt)
  balance!: number;
}
