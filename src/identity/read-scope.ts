// The one place that decides which rows a caller may read. Services pass its filter to every
// query, so a resolver cannot forget it.
import type { Caller } from "./caller.js";

export type ScopedModel =
  "account" | "dataset" | "source" | "pipeline" | "pipelineRun" | "creditTransaction" | "sale";

export type Where = Record<string, unknown>;

const everything: Where = {};

export function readScope(caller: Caller, model: ScopedModel): Where {
  if (caller.kind === "system") return everything;
  if (caller.kind === "anonymous") return anonymousScope(model);
  if (caller.role === "ADMIN") return everything;
  const own = caller.accountId;
  switch (model) {
    case "account":
      return { id: own };
    case "dataset":
      return { OR: [{ status: "PUBLISHED" }, { accountId: own }] };
    case "source":
    case "pipeline":
    case "pipelineRun":
    case "creditTransaction":
      return { accountId: own };
    case "sale":
      return { OR: [{ sellerAccountId: own }, { buyerAccountId: own }] };
  }
}

// Before the Access issue lands no request is authenticated, so the anonymous caller stands in
// for every client: it sees the published catalogue, and (for now) the operational connections.
// Access turns everything but the catalogue into `nothing` for anonymous callers.
function anonymousScope(model: ScopedModel): Where {
  return model === "dataset" ? { status: "PUBLISHED" } : everything;
}
