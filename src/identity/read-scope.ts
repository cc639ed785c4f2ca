// The one place that decides which rows a caller may read. Services pass its filter to every
// query (db/model-reader.ts), so a resolver cannot forget it.
import type { Caller } from "./caller.js";

export type ScopedModel =
  "account" | "apiKey" | "dataset" | "source" | "pipeline" | "pipelineRun" | "creditTransaction" | "sale";

export type Where = Record<string, unknown>;

const everything: Where = {};
const nothing: Where = { id: { in: [] } };

export function readScope(caller: Caller, model: ScopedModel): Where {
  if (caller.kind === "system") return everything;
  // Anonymous callers browse the published catalogue and nothing else.
  if (caller.kind === "anonymous") return model === "dataset" ? { status: "PUBLISHED" } : nothing;
  if (caller.role === "ADMIN") return everything;
  const own = caller.accountId;
  switch (model) {
    case "account":
      return { id: own };
    case "dataset":
      return { OR: [{ status: "PUBLISHED" }, { accountId: own }] };
    case "apiKey":
    case "source":
    case "pipeline":
    case "pipelineRun":
    case "creditTransaction":
      return { accountId: own };
    case "sale":
      return { OR: [{ sellerAccountId: own }, { buyerAccountId: own }] };
  }
}
