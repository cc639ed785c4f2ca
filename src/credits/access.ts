// Who may read a dataset's records, and at what price: the one rule, for every path that reads
// or sends records (pages, lookups, aggregates, exports, file drops, webhooks, live updates).
// Pure: the caller loads the dataset row (and, for a PURCHASED dataset, whether the reader holds
// an active entitlement) and hands them in; nothing here reads a store or the clock.
import { AppError } from "../errors.js";
import type { DatasetAccess, DatasetStatus } from "../generated/prisma/client.js";

/** The fields of a dataset the decision looks at. */
export interface AccessDataset {
  id: string;
  /** The publisher. */
  accountId: string;
  status: DatasetStatus;
  access: DatasetAccess;
  pricePer100Records: bigint;
}

/** The account that reads (or receives) the records. */
export interface Reader {
  accountId: string;
  /** Admins read everything free. A delivery reads as its account's buyer, never as an admin. */
  admin: boolean;
  /** Datasets an API key is limited to; absent or empty: no limit. */
  keyDatasetIds?: readonly string[];
}

export type AccessDecision =
  | { kind: "free"; reason: "owner" | "admin" | "open" | "purchased" }
  | { kind: "metered"; pricePer100: bigint }
  | {
      kind: "denied";
      code: "NOT_FOUND" | "FORBIDDEN";
      /** FORBIDDEN because a PURCHASED dataset was not bought (or its purchase lapsed). */
      requiresPurchase?: true;
      /** FORBIDDEN because the API key is limited to other datasets. */
      keyDatasetScoped?: true;
    };

/**
 * True when the decision depends on an entitlement: a PURCHASED dataset read by someone who is
 * neither its publisher nor an admin. Only then does the caller need to look one up.
 */
export function needsEntitlement(reader: Reader, dataset: AccessDataset): boolean {
  return (
    dataset.access === "PURCHASED" &&
    dataset.status === "PUBLISHED" &&
    !reader.admin &&
    dataset.accountId !== reader.accountId
  );
}

/**
 * The decision. `entitled`: whether the reader holds an active purchase of the dataset; only
 * consulted when {@link needsEntitlement} is true (pass false otherwise).
 *
 * - A key limited to other datasets: FORBIDDEN, whoever owns the data.
 * - Publishers read their own datasets free, whatever their status; admins read everything free.
 * - Anyone else sees only PUBLISHED datasets (NOT_FOUND otherwise, so drafts do not leak):
 *   OPEN free, METERED at the dataset's price, PURCHASED free with an active purchase and
 *   FORBIDDEN (`requiresPurchase`) without one.
 */
export function decideAccess(reader: Reader, dataset: AccessDataset, entitled: boolean): AccessDecision {
  const keyIds = reader.keyDatasetIds;
  if (keyIds && keyIds.length > 0 && !keyIds.includes(dataset.id)) {
    return { kind: "denied", code: "FORBIDDEN", keyDatasetScoped: true };
  }
  if (dataset.accountId === reader.accountId) return { kind: "free", reason: "owner" };
  if (reader.admin) return { kind: "free", reason: "admin" };
  if (dataset.status !== "PUBLISHED") return { kind: "denied", code: "NOT_FOUND" };
  switch (dataset.access) {
    case "OPEN":
      return { kind: "free", reason: "open" };
    case "METERED":
      return { kind: "metered", pricePer100: dataset.pricePer100Records };
    case "PURCHASED":
      return entitled
        ? { kind: "free", reason: "purchased" }
        : { kind: "denied", code: "FORBIDDEN", requiresPurchase: true };
  }
}

/** True when the decision lets the reader have the records (free or paying). */
export const grants = (decision: AccessDecision): decision is Exclude<AccessDecision, { kind: "denied" }> =>
  decision.kind !== "denied";

/** The client error a denial is: NOT_FOUND, or FORBIDDEN with what would lift it. */
export function deniedError(decision: Extract<AccessDecision, { kind: "denied" }>): AppError {
  if (decision.code === "NOT_FOUND") return new AppError("NOT_FOUND", "Dataset not found");
  if (decision.keyDatasetScoped) {
    return new AppError("FORBIDDEN", "This API key is limited to other datasets", { keyDatasetScoped: true });
  }
  return new AppError("FORBIDDEN", "Buy this dataset first (purchaseDataset)", { requiresPurchase: true });
}
