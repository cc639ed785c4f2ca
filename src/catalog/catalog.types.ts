import { ArgsType, Field, ID, InputType, Int, ObjectType, registerEnumType } from "type-graphql";
import {
  DatasetAccess,
  DatasetStatus,
  PurchaseTerm,
  type Dataset as DatasetRow,
} from "../generated/prisma/client.js";
import { COLUMN_TYPES, type Column, type ColumnType as ColumnTypeName } from "./columns.js";
import type { DatasetSort } from "./catalog.service.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(DatasetAccess, {
  name: "DatasetAccess",
  description: "OPEN is free; METERED costs credits per 100 records; PURCHASED needs a purchase.",
});
registerEnumType(DatasetStatus, { name: "DatasetStatus" });
registerEnumType(PurchaseTerm, { name: "PurchaseTerm" });

export const ColumnType = Object.fromEntries(COLUMN_TYPES.map((t) => [t, t])) as { [K in ColumnTypeName]: K };
registerEnumType(ColumnType, {
  name: "ColumnType",
  description:
    "Column types. In records, INT64 and DECIMAL values are strings (exact), DATE is YYYY-MM-DD, DATETIME is ISO 8601 UTC.",
});

export const DatasetOrder = {
  CREATED: "CREATED",
  TITLE: "TITLE",
  UPDATED: "UPDATED",
  ROW_COUNT: "ROW_COUNT",
} as const satisfies Record<DatasetSort, DatasetSort>;
registerEnumType(DatasetOrder, {
  name: "DatasetOrder",
  description: "CREATED oldest first; TITLE A-Z; UPDATED and ROW_COUNT largest first.",
});

@ObjectType({ description: "One column of a dataset's schema." })
export class DatasetColumn {
  @Field(() => String)
  name!: string;

  @Field(() => ColumnType)
  type!: ColumnTypeName;

  @Field(() => Int, { nullable: true, description: "DECIMAL: total digits." })
  precision!: number | null;

  @Field(() => Int, { nullable: true, description: "DECIMAL: digits after the point." })
  scale!: number | null;

  @Field(() => Boolean)
  nullable!: boolean;

  @Field(() => String, { nullable: true })
  description!: string | null;
}

@ObjectType({ description: "The public profile of a dataset's publisher." })
export class Publisher {
  @Field(() => ID, { description: "Stable id of the profile (a cache key, derived from the slug)." })
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => String)
  slug!: string;

  static from(profile: { name: string; slug: string }): Publisher {
    return Object.assign(new Publisher(), { id: encodeGlobalId("Publisher", profile.slug), ...profile });
  }
}

@ObjectType({
  description: "One column's figures over the live rows, computed by the engine after each run.",
})
export class ColumnStatistics {
  @Field(() => String)
  name!: string;

  @Field(() => SafeInt)
  nulls!: number;

  @Field(() => String, {
    nullable: true,
    description: "As the engine prints it; null when the column holds no value.",
  })
  min!: string | null;

  @Field(() => String, { nullable: true })
  max!: string | null;

  @Field(() => SafeInt, { description: "Distinct non-null values, estimated (exact below 65,536)." })
  distinct!: number;
}

@ObjectType({ implements: Node, description: "A published table of records buyers can read." })
export class Dataset extends Node {
  /** Raw foreign key, resolved to `publisher` through a loader. */
  accountId!: string;

  /**
   * The stored row this was made from, loaded under the caller's read scope: record reads take
   * it as it is (records.resolver.ts), never decoding the id to read it again.
   */
  row!: DatasetRow;

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

  @Field(() => SafeInt, { nullable: true, description: "Credits for access (PURCHASED datasets)." })
  purchasePrice!: number | null;

  @Field(() => PurchaseTerm, { nullable: true })
  purchaseTerm!: PurchaseTerm | null;

  @Field(() => DatasetStatus)
  status!: DatasetStatus;

  @Field(() => Int, { description: "Increases with every successful load." })
  version!: number;

  @Field(() => SafeInt)
  rowCount!: number;

  @Field(() => Date, { nullable: true })
  lastUpdatedAt!: Date | null;

  @Field(() => [ColumnStatistics], { nullable: true, description: "null until the first successful run." })
  columnStats!: ColumnStatistics[] | null;

  @Field(() => Date, { nullable: true, description: "When columnStats were computed." })
  columnStatsAt!: Date | null;

  @Field(() => Date)
  createdAt!: Date;

  @Field(() => Date)
  updatedAt!: Date;

  static from(row: DatasetRow): Dataset {
    return Object.assign(new Dataset(), {
      row,
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
      purchasePrice: row.purchasePrice === null ? null : safeInt(row.purchasePrice),
      purchaseTerm: row.purchaseTerm,
      status: row.status,
      version: row.version,
      rowCount: safeInt(row.rowCount),
      lastUpdatedAt: row.lastUpdatedAt,
      columnStats: Array.isArray(row.columnStats) ? (row.columnStats as unknown as ColumnStatistics[]) : null,
      columnStatsAt: row.columnStatsAt,
      createdAt: row.createdAt,
      updatedAt: row.updatedAt,
    });
  }
}

function parseColumns(json: unknown): DatasetColumn[] {
  if (!Array.isArray(json)) return [];
  return (json as Column[]).map((c) =>
    Object.assign(new DatasetColumn(), {
      name: c.name,
      type: c.type,
      precision: c.precision ?? null,
      scale: c.scale ?? null,
      nullable: Boolean(c.nullable),
      description: c.description ?? null,
    }),
  );
}

@InputType()
export class DatasetColumnInput implements Column {
  @Field(() => String, { description: "Lower-case letters, digits and _, starting with a letter." })
  name!: string;

  @Field(() => ColumnType)
  type!: ColumnTypeName;

  @Field(() => Int, { nullable: true })
  precision?: number | null;

  @Field(() => Int, { nullable: true })
  scale?: number | null;

  @Field(() => Boolean, { defaultValue: false })
  nullable!: boolean;

  @Field(() => String, { nullable: true })
  description?: string | null;
}

@InputType()
export class UpdateDatasetInput {
  @Field(() => String, { nullable: true })
  title?: string;

  @Field(() => String, { nullable: true })
  description?: string | null;

  @Field(() => String, { nullable: true })
  category?: string;

  @Field(() => [String], { nullable: true })
  tags?: string[] | null;

  @Field(() => DatasetAccess, { nullable: true })
  access?: DatasetAccess;

  @Field(() => Int, { nullable: true })
  pricePer100Records?: number | null;

  @Field(() => Int, { nullable: true })
  purchasePrice?: number | null;

  @Field(() => PurchaseTerm, { nullable: true })
  purchaseTerm?: PurchaseTerm | null;
}

@InputType()
export class CreateDatasetInput {
  @Field(() => String, { description: "Stable, URL-safe name: 3-64 of a-z, 0-9 and _." })
  slug!: string;

  @Field(() => String)
  title!: string;

  @Field(() => String, { nullable: true })
  description?: string | null;

  @Field(() => String)
  category!: string;

  @Field(() => [String], { nullable: true })
  tags?: string[] | null;

  @Field(() => [DatasetColumnInput])
  columns!: DatasetColumnInput[];

  @Field(() => [String], { description: "The columns that identify a record." })
  keyColumns!: string[];

  @Field(() => DatasetAccess)
  access!: DatasetAccess;

  @Field(() => Int, { nullable: true, description: "METERED: credits per 100 records read." })
  pricePer100Records?: number | null;

  @Field(() => Int, { nullable: true, description: "PURCHASED: credits for access." })
  purchasePrice?: number | null;

  @Field(() => PurchaseTerm, { nullable: true })
  purchaseTerm?: PurchaseTerm | null;
}

@ArgsType()
export class CatalogArgs {
  @Field(() => String, { nullable: true, description: "Words in the title or description, or a tag." })
  search?: string | null;

  @Field(() => String, { nullable: true })
  category?: string | null;

  @Field(() => String, { nullable: true, description: "The publisher's slug." })
  publisher?: string | null;

  @Field(() => DatasetOrder, { nullable: true, defaultValue: "CREATED" })
  orderBy?: DatasetSort | null;

  @Field(() => DatasetStatus, {
    nullable: true,
    description: "Publishers: list their own datasets in this status (others only ever see PUBLISHED).",
  })
  status?: DatasetStatus | null;
}

@ObjectType()
export class Category {
  @Field(() => ID, { description: "Stable id of the category (a cache key, derived from the name)." })
  id!: string;

  @Field(() => String)
  name!: string;

  @Field(() => Int, { description: "Published datasets in it." })
  datasetCount!: number;
}

@ObjectType()
export class DatasetConnection extends ConnectionType(Dataset) {}
