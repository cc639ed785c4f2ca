import { Field, Int, ObjectType, registerEnumType } from "type-graphql";
import { DatasetAccess, DatasetStatus, type Dataset as DatasetRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(DatasetAccess, {
  name: "DatasetAccess",
  description: "OPEN is free; METERED costs credits per 100 records; PURCHASED needs a purchase.",
});
registerEnumType(DatasetStatus, { name: "DatasetStatus" });

@ObjectType({ description: "One column of a dataset's schema." })
export class DatasetColumn {
  @Field(() => String)
  name!: string;

  @Field(() => String, { description: "ClickHouse type, e.g. String, Int64, Decimal(18,2), DateTime." })
  type!: string;

  @Field(() => Boolean)
  nullable!: boolean;

  @Field(() => String, { nullable: true })
  description!: string | null;
}

@ObjectType({ description: "The public profile of a dataset's publisher." })
export class Publisher {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  slug!: string;
}

@ObjectType({ implements: Node, description: "A published table of records buyers can read." })
export class Dataset extends Node {
  /** Raw foreign key, resolved to `publisher` through a loader. */
  accountId!: string;

  @Field(() => String, { description: "Stable, URL-safe name, e.g. housing_prices_ny_2024." })
  slug!: string;

  @Field(() => String)
  title!: string;

  @Field(() => String)
  description!: string;

  @Field(() => String)
  category!: string;

  @Field(() => [String])
  tags!: string[];

  @Field(() => [DatasetColumn])
  columns!: DatasetColumn[];

  @Field(() => [String])
  keyColumns!: string[];

  @Field(() => DatasetAccess)
  access!: DatasetAccess;

  @Field(() => SafeInt, { description: "Credits per 100 records read (METERED datasets)." })
  pricePer100Records!: number;

  @Field(() => DatasetStatus)
  status!: DatasetStatus;

  @Field(() => Int, { description: "Increases with every successful load." })
  version!: number;

  @Field(() => SafeInt)
  rowCount!: number;

  @Field(() => Date, { nullable: true })
  lastUpdatedAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: DatasetRow): Dataset {
    return Object.assign(new Dataset(), {
      id: encodeGlobalId("Dataset", row.id),
      accountId: row.accountId,
      slug: row.slug,
      title: row.title,
      description: row.description,
      category: row.category,
      tags: row.tags,
      columns: parseColumns(row.columns),
      keyColumns: row.keyColumns,
      access: row.access,
      pricePer100Records: safeInt(row.pricePer100Records),
      status: row.status,
      version: row.version,
      rowCount: safeInt(row.rowCount),
      lastUpdatedAt: row.lastUpdatedAt,
      createdAt: row.createdAt,
    });
  }
}

function parseColumns(json: unknown): DatasetColumn[] {
  if (!Array.isArray(json)) return [];
  return json.map((c: Record<string, unknown>) =>
    Object.assign(new DatasetColumn(), {
      name: String(c.name),
      type: String(c.type),
      nullable: Boolean(c.nullable),
      description: typeof c.description === "string" ? c.description : null,
    }),
  );
}

@ObjectType()
export class DatasetConnection extends ConnectionType(Dataset) {}
