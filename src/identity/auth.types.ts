import { Field, ID, InputType, ObjectType, registerEnumType } from "type-graphql";
import { UserRole, type User as UserRow } from "../generated/prisma/client.js";
import { Node, encodeGlobalId } from "../graphql/relay.js";
import { Account } from "./account.types.js";
import { ApiKey } from "./api-key.types.js";

registerEnumType(UserRole, {
  name: "UserRole",
  description: "ADMIN operates the platform; PUBLISHER sells data; BUYER reads and receives it.",
});

export enum SignupRole {
  BUYER = "BUYER",
  PUBLISHER = "PUBLISHER",
}
registerEnumType(SignupRole, { name: "SignupRole" });

@ObjectType({ implements: Node })
export class User extends Node {
  @Field(() => String)
  email!: string;

  @Field(() => String)
  name!: string;

  @Field(() => UserRole)
  role!: UserRole;

  @Field(() => Date, { nullable: true })
  lastLoginAt!: Date | null;

  static from(row: UserRow): User {
    return Object.assign(new User(), {
      id: encodeGlobalId("User", row.id),
      email: row.email,
      name: row.name,
      role: row.role,
      lastLoginAt: row.lastLoginAt,
    });
  }
}

@ObjectType({ description: "The caller: user, account, and what the credential used may do." })
export class Viewer {
  @Field(() => ID, {
    description: "Stable id of the credential used (a cache key): one per API key, one per user's sessions.",
  })
  id!: string;

  @Field(() => User)
  user!: User;

  @Field(() => Account)
  account!: Account;

  @Field(() => [String], { description: "Scopes of the credential used for this request." })
  scopes!: string[];

  @Field(() => String, { description: "API_KEY or SESSION." })
  authenticatedWith!: string;
}

@InputType()
export class SignupInput {
  @Field(() => String, { description: "The organisation's name." })
  name!: string;

  @Field(() => String)
  email!: string;

  @Field(() => String, { nullable: true, description: "For dashboard login; at least 12 characters." })
  password?: string | null;

  @Field(() => SignupRole, { nullable: true, defaultValue: SignupRole.BUYER })
  role?: SignupRole | null;
}

@ObjectType()
export class SignupPayload {
  @Field(() => User)
  user!: User;

  @Field(() => Account)
  account!: Account;

  @Field(() => ApiKey)
  apiKey!: ApiKey;

  @Field(() => String, { description: "The API key secret. Store it now: it is never shown again." })
  apiKeySecret!: string;
}

@ObjectType()
export class LoginPayload {
  @Field(() => String, { description: "Send as `Authorization: Bearer <token>`." })
  token!: string;

  @Field(() => Date)
  expiresAt!: Date;

  @Field(() => User)
  user!: User;
}
