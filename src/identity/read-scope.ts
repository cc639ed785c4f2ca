// The one place that decides which rows a caller may read. Services pass its filter to every
// query (db/model-reader.ts), so a resolver cannot forget it.
import type { Caller, Scope } from "./caller.js";

export type ScopedModel =
  | "account"
  | "apiKey"
  | "user"
  | "dataset"
  | "source"
  | "pipeline"
  | "pipelineRun"
  | "pipelineLog"
  | "creditTransaction"
  | "sale"
  | "delivery"
  | "deliveryAttempt"
  | "earningsEntry"
  | "payout"
  | "creditOrder"
  | "purchase"
  | "adminLogEntry";

export type Where = Record<string, unknown>;

const everything: Where = {};
const nothing: Where = { id: { in: [] } };

/**
 * The scope a credential needs to read each model at all, wherever the read comes from: a root
 * connection (which also answers FORBIDDEN), `node(id:)` or a relation field (which see nothing).
 */
const READ_SCOPE: Record<ScopedModel, Scope> = {
  account: "account:read",
  apiKey: "account:read",
  user: "account:read",
  creditTransaction: "account:read",
  sale: "account:read",
  delivery: "account:read",
  deliveryAttempt: "account:read",
  earningsEntry: "account:read",
  payout: "account:read",
  creditOrder: "account:read",
  purchase: "account:read",
  adminLogEntry: "admin",
  dataset: "catalog:read",
  source: "pipelines:read",
  pipeline: "pipelines:read",
  pipelineRun: "pipelines:read",
  pipelineLog: "pipelines:read",
};

export function readScope(caller: Caller, model: ScopedModel): Where {
  if (caller.kind === "system") return everything;
  // Anonymous callers browse the published catalogue and nothing else.
  if (caller.kind === "anonymous") return model === "dataset" ? { status: "PUBLISHED" } : nothing;
  if (!caller.scopes.includes(READ_SCOPE[model])) return nothing;
  if (caller.role === "ADMIN") return everything;
  const own = caller.accountId;
  switch (model) {
    case "account":
      return { id: own };
    case "dataset":
      return { OR: [{ status: "PUBLISHED" }, { accountId: own }] };
    case "apiKey":
    case "user":
    case "source":
    case "pipeline":
    case "pipelineRun":
    case "creditTransaction":
    case "delivery":
    case "earningsEntry":
    case "payout":
    case "creditOrder":
    case "purchase":
      return { accountId: own };
    case "adminLogEntry":
      return nothing;
    case "deliveryAttempt":
      return { delivery: { accountId: own } };
    case "pipelineLog":
      return { pipeline: { accountId: own } };
    case "sale":
      return { OR: [{ sellerAccountId: own }, { buyerAccountId: own }] };
  }
}
