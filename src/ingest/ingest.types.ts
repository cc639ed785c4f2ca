import { Field, Int, ObjectType } from "type-graphql";
import { Dataset } from "../catalog/catalog.types.js";

@ObjectType({ description: "What upsertRecords or deleteRecords changed." })
export class RecordCorrection {
  @Field(() => Dataset, { description: "The dataset after the change: its version moved when rows changed." })
  dataset!: Dataset;

  @Field(() => Int, { description: "Records written, or deleted (keys with no live record change nothing)." })
  changedRows!: number;
}
