import { Field, ObjectType, registerEnumType } from "type-graphql";
import { AccountStatus, type Account as AccountRow } from "../generated/prisma/client.js";
import { ConnectionType, Node, encodeGlobalId } from "../graphql/relay.js";
import { SafeInt, safeInt } from "../graphql/scalars.js";

registerEnumType(AccountStatus, { name: "AccountStatus" });

@ObjectType({ implements: Node, description: "An organisation: publisher, buyer or both." })
export class Account extends Node {
  @Field(() => String)
  name!: string;

  @Field(() => String)
  slug!: string;

  @Field(() => SafeInt, { description: "Prepaid credits available." })
  creditBalance!: number;

  @Field(() => AccountStatus)
  status!: AccountStatus;

  @Field(() => Date)
  createdAt!: Date;

  static from(row: AccountRow): Account {
    return Object.assign(new Account(), {
      id: encodeGlobalId("Account", row.id),
      name: row.name,
      slug: row.slug,
      creditBalance: safeInt(row.creditBalance),
      status: row.status,
      createdAt: row.createdAt,
    });
  }
}

@ObjectType()
export class AccountConnection extends ConnectionType(Account) {}
