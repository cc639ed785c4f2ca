import { Field, ObjectType, registerEnumType } from "type-graphql";
import { SaleKind, type Sale as SaleRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(SaleKind, { name: "SaleKind" });

@ObjectType({ implements: Node, description: "Credits a buyer paid for a publisher's dataset." })
export class Sale extends Node {
  datasetId!: string;
  buyerAccountId!: string;
  sellerAccountId!: string;

  @Field(() => SaleKind)
  kind!: SaleKind;

  @Field(() => SafeInt)
  credits!: number;

  @Field(() => SafeInt, { description: "Records sold (METERED sales)." })
  records!: number;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: SaleRow): Sale {
    return Object.assign(new Sale(), {
      id: encodeGlobalId("Sale", row.id),
      datasetId: row.datasetId,
      buyerAccountId: row.buyerAccountId,
      sellerAccountId: row.sellerAccountId,
      kind: row.kind,
      credits: safeInt(row.credits),
      records: safeInt(row.records),
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class SaleConnection extends ConnectionType(Sale) {}
