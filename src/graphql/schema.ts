import "reflect-metadata";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { buildSchemaSync } from "type-graphql";
import { CatalogResolver } from "../catalog/catalog.resolver.js";
import { CreditResolver } from "../credits/credit.resolver.js";
import { AccountResolver } from "../identity/account.resolver.js";
import { ApiKeyResolver } from "../identity/api-key.resolver.js";
import { AuthResolver } from "../identity/auth.resolver.js";
import { authChecker } from "../identity/authorization.js";
import {
  PipelineResolver,
  PipelineRunResolver,
  SourceMetricsResolver,
} from "../pipelines/pipeline.resolver.js";
import { RecordConnectionResolver, RecordsResolver } from "../records/records.resolver.js";
import { PurchaseResolver, SaleResolver } from "../sales/sale.resolver.js";
import { SourceResolver } from "../sources/source.resolver.js";
import { NodeResolver } from "./node.resolver.js";

const resolvers = [
  NodeResolver,
  AccountResolver,
  ApiKeyResolver,
  AuthResolver,
  CatalogResolver,
  CreditResolver,
  PipelineResolver,
  PipelineRunResolver,
  SourceMetricsResolver,
  PurchaseResolver,
  RecordConnectionResolver,
  RecordsResolver,
  SaleResolver,
  SourceResolver,
] as const;

let schema: GraphQLSchema | undefined;

/** The schema is built once per process: type-graphql's metadata is global anyway. */
export function graphqlSchema(): GraphQLSchema {
  schema ??= buildSchemaSync({ resolvers, validate: false, authChecker, authMode: "error" });
  return schema;
}

/** The SDL committed as schema.graphql: sorted, so that it changes only when the API does. */
export function printGraphqlSchema(): string {
  return `${printSchema(lexicographicSortSchema(graphqlSchema()))}\n`;
}
