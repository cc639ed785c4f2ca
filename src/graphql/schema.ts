import "reflect-metadata";
import { lexicographicSortSchema, printSchema, type GraphQLSchema } from "graphql";
import { buildSchemaSync, type PubSub } from "type-graphql";
import { AdminResolver } from "../admin/admin.resolver.js";
import { EarningsResolver } from "../earnings/earnings.resolver.js";
import { CreditPackResolver } from "../payments/packs.resolver.js";
import { EntitlementResolver } from "../purchases/purchase.resolver.js";
import { StatementResolver } from "../statements/statement.resolver.js";
import { InvitationResolver } from "../admin/invitation.resolver.js";
import { CatalogResolver } from "../catalog/catalog.resolver.js";
import { CreditResolver, UsageLogEntryResolver } from "../credits/credit.resolver.js";
import { DeliveryAttemptResolver, DeliveryResolver } from "../deliveries/delivery.resolver.js";
import { AccountResolver } from "../identity/account.resolver.js";
import { ApiKeyResolver } from "../identity/api-key.resolver.js";
import { AuthResolver } from "../identity/auth.resolver.js";
import { authChecker } from "../identity/authorization.js";
import { IngestResolver } from "../ingest/ingest.resolver.js";
import {
  PipelineResolver,
  PipelineRunResolver,
  SourceMetricsResolver,
} from "../pipelines/pipeline.resolver.js";
import { RecordConnectionResolver, RecordsResolver } from "../records/records.resolver.js";
import { PurchaseResolver, SaleResolver } from "../sales/sale.resolver.js";
import { SourceResolver } from "../sources/source.resolver.js";
import {
  DatasetUpdateResolver,
  PipelineRunUpdateResolver,
  SubscriptionResolver,
} from "../subscriptions/subscription.resolver.js";
import { NodeResolver } from "./node.resolver.js";

const resolvers = [
  NodeResolver,
  AccountResolver,
  AdminResolver,
  EarningsResolver,
  CreditPackResolver,
  EntitlementResolver,
  StatementResolver,
  InvitationResolver,
  ApiKeyResolver,
  AuthResolver,
  CatalogResolver,
  CreditResolver,
  UsageLogEntryResolver,
  IngestResolver,
  DatasetUpdateResolver,
  DeliveryAttemptResolver,
  DeliveryResolver,
  PipelineResolver,
  PipelineRunResolver,
  PipelineRunUpdateResolver,
  SourceMetricsResolver,
  PurchaseResolver,
  RecordConnectionResolver,
  RecordsResolver,
  SaleResolver,
  SourceResolver,
  SubscriptionResolver,
] as const;

// type-graphql builds @Subscription fields only when given a PubSub, even though each of ours
// brings its own `subscribe`: the schema is one per process, while each app (the tests run two in
// one process) follows its own Redis channels, reached through the context (Context.live).
const unusedPubSub: PubSub = {
  publish() {
    throw new Error("publish through services.events; subscriptions read through Context.live");
  },
  subscribe() {
    throw new Error("subscriptions read through Context.live");
  },
};

let schema: GraphQLSchema | undefined;

/** The schema is built once per process: type-graphql's metadata is global anyway. */
export function graphqlSchema(): GraphQLSchema {
  schema ??= buildSchemaSync({
    resolvers,
    validate: false,
    authChecker,
    authMode: "error",
    pubSub: unusedPubSub,
  });
  return schema;
}

/** The SDL committed as schema.graphql: sorted, so that it changes only when the API does. */
export function printGraphqlSchema(): string {
  return `${printSchema(lexicographicSortSchema(graphqlSchema()))}\n`;
}
