// Per-request DataLoaders, one per node type, so `node(id:)`, `nodes(ids:)` and relation fields
// batch into one query per type per tick, always through the caller's read scope.
import DataLoader from "dataloader";
import { AdminLogEntry } from "../admin/admin.types.js";
import { Dataset } from "../catalog/catalog.types.js";
import { EarningsEntry, Payout } from "../earnings/earnings.types.js";
import { CreditTransaction } from "../credits/credit.types.js";
import { Account } from "../identity/account.types.js";
import { ApiKey } from "../identity/api-key.types.js";
import { User } from "../identity/auth.types.js";
import { Delivery, DeliveryAttempt } from "../deliveries/delivery.types.js";
import type { Caller } from "../identity/caller.js";
import type { Plan } from "../generated/prisma/client.js";
import { Pipeline, PipelineLog, PipelineRun } from "../pipelines/pipeline.types.js";
import { Sale } from "../sales/sale.types.js";
import type { Services } from "../services.js";
import { Source } from "../sources/source.types.js";
import type { Node } from "./relay.js";

interface NodeType {
  load(services: Services, caller: Caller, ids: readonly string[]): Promise<(Node | null)[]>;
}

function nodeType<Row extends { id: string }>(
  reader: (services: Services) => { byIds(caller: Caller, ids: readonly string[]): Promise<(Row | null)[]> },
  toNode: (row: Row) => Node,
): NodeType {
  return {
    load: async (services, caller, ids) =>
      (await reader(services).byIds(caller, ids)).map((row) => (row ? toNode(row) : null)),
  };
}

/** Every type `node(id:)` resolves. A new node type is added here and nowhere else. */
export const NODE_TYPES = {
  Account: nodeType((s) => s.accounts.accounts, Account.from),
  AdminLogEntry: nodeType((s) => s.admin.log, AdminLogEntry.from),
  EarningsEntry: nodeType((s) => s.earnings.entries, EarningsEntry.from),
  Payout: nodeType((s) => s.earnings.payouts, Payout.from),
  ApiKey: nodeType((s) => s.apiKeys.keys, ApiKey.from),
  User: nodeType((s) => s.accounts.users, User.from),
  CreditTransaction: nodeType((s) => s.credits.transactions, CreditTransaction.from),
  Dataset: nodeType((s) => s.catalog.datasets, Dataset.from),
  Delivery: nodeType((s) => s.deliveries.deliveries, Delivery.from),
  DeliveryAttempt: nodeType((s) => s.deliveries.attempts, DeliveryAttempt.from),
  Pipeline: nodeType((s) => s.pipelines.pipelines, Pipeline.from),
  PipelineRun: nodeType((s) => s.pipelines.runs, PipelineRun.from),
  PipelineLog: nodeType((s) => s.pipelines.logs, PipelineLog.from),
  Sale: nodeType((s) => s.sales.sales, Sale.from),
  Source: nodeType((s) => s.sources.sources, Source.from),
} satisfies Record<string, NodeType>;

export type NodeTypeName = keyof typeof NODE_TYPES;

export const isNodeTypeName = (name: string): name is NodeTypeName => Object.hasOwn(NODE_TYPES, name);

export class Loaders {
  private readonly byType = new Map<NodeTypeName, DataLoader<string, Node | null>>();

  /** Publishers' public profiles; see CatalogService.publishers. */
  readonly publisher: DataLoader<string, { name: string; slug: string } | null>;

  /** Plans by id: a page of accounts asks for its plans in one query. */
  readonly plan: DataLoader<string, Plan | null>;

  constructor(
    private readonly services: Services,
    private readonly caller: Caller,
  ) {
    this.publisher = new DataLoader((ids) => services.catalog.publishers(ids), { maxBatchSize: 1000 });
    this.plan = new DataLoader((ids) => services.accounts.plans(ids));
  }

  /** The node of that type and raw id, or null when it does not exist or is out of scope. */
  node(type: NodeTypeName, id: string): Promise<Node | null> {
    let loader = this.byType.get(type);
    if (!loader) {
      loader = new DataLoader((ids) => NODE_TYPES[type].load(this.services, this.caller, ids), {
        maxBatchSize: 1000,
      });
      this.byType.set(type, loader);
    }
    return loader.load(id);
  }
}
