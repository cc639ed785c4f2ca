// The one access-and-price rule (src/credits/access.ts) as a table of cases.
import { describe, expect, it } from "vitest";
import {
  decideAccess,
  deniedError,
  grants,
  needsEntitlement,
  type AccessDataset,
  type AccessDecision,
  type Reader,
} from "../../src/credits/access.js";

const PUBLISHER = "pub";
const BUYER = "buyer";
const dataset = (over: Partial<AccessDataset> = {}): AccessDataset => ({
  id: "d1",
  accountId: PUBLISHER,
  status: "PUBLISHED",
  access: "METERED",
  pricePer100Records: 7n,
  ...over,
});
const buyer: Reader = { accountId: BUYER, admin: false };
const owner: Reader = { accountId: PUBLISHER, admin: false };
const admin: Reader = { accountId: "adm", admin: true };
const scopedKey = (ids: string[]): Reader => ({ ...buyer, keyDatasetIds: ids });

const cases: [string, Reader, AccessDataset, boolean, AccessDecision][] = [
  ["a buyer reads OPEN free", buyer, dataset({ access: "OPEN" }), false, { kind: "free", reason: "open" }],
  ["a buyer pays for METERED", buyer, dataset(), false, { kind: "metered", pricePer100: 7n }],
  [
    "METERED at price 0 is still metered",
    buyer,
    dataset({ pricePer100Records: 0n }),
    false,
    { kind: "metered", pricePer100: 0n },
  ],
  [
    "PURCHASED with an active purchase is free",
    buyer,
    dataset({ access: "PURCHASED" }),
    true,
    { kind: "free", reason: "purchased" },
  ],
  [
    "PURCHASED without one is FORBIDDEN",
    buyer,
    dataset({ access: "PURCHASED" }),
    false,
    { kind: "denied", code: "FORBIDDEN", requiresPurchase: true },
  ],
  [
    "a draft is NOT_FOUND to a buyer",
    buyer,
    dataset({ status: "DRAFT" }),
    false,
    { kind: "denied", code: "NOT_FOUND" },
  ],
  [
    "an unpublished dataset is NOT_FOUND even when bought",
    buyer,
    dataset({ status: "UNPUBLISHED", access: "PURCHASED" }),
    true,
    { kind: "denied", code: "NOT_FOUND" },
  ],
  [
    "an archived dataset is NOT_FOUND",
    buyer,
    dataset({ status: "ARCHIVED", access: "OPEN" }),
    false,
    { kind: "denied", code: "NOT_FOUND" },
  ],
  ["the publisher reads METERED free", owner, dataset(), false, { kind: "free", reason: "owner" }],
  [
    "the publisher reads a draft free",
    owner,
    dataset({ status: "DRAFT" }),
    false,
    { kind: "free", reason: "owner" },
  ],
  [
    "the publisher reads PURCHASED without buying",
    owner,
    dataset({ access: "PURCHASED" }),
    false,
    { kind: "free", reason: "owner" },
  ],
  ["an admin reads METERED free", admin, dataset(), false, { kind: "free", reason: "admin" }],
  ["an admin reads a draft", admin, dataset({ status: "DRAFT" }), false, { kind: "free", reason: "admin" }],
  [
    "a key limited to this dataset pays as its account",
    scopedKey(["d1"]),
    dataset(),
    false,
    { kind: "metered", pricePer100: 7n },
  ],
  [
    "a key limited to other datasets is FORBIDDEN",
    scopedKey(["d2"]),
    dataset({ access: "OPEN" }),
    false,
    { kind: "denied", code: "FORBIDDEN", keyDatasetScoped: true },
  ],
  [
    "a key limit applies to the publisher's own data too",
    { ...owner, keyDatasetIds: ["d2"] },
    dataset(),
    false,
    { kind: "denied", code: "FORBIDDEN", keyDatasetScoped: true },
  ],
  ["an empty key limit is no limit", scopedKey([]), dataset(), false, { kind: "metered", pricePer100: 7n }],
];

describe("decideAccess", () => {
  it.each(cases)("%s", (_name, reader, data, entitled, expected) => {
    expect(decideAccess(reader, data, entitled)).toEqual(expected);
  });

  it("asks for an entitlement only where it decides: a PURCHASED, published dataset of someone else, not for an admin", () => {
    expect(needsEntitlement(buyer, dataset({ access: "PURCHASED" }))).toBe(true);
    expect(needsEntitlement(buyer, dataset({ access: "PURCHASED", status: "DRAFT" }))).toBe(false);
    expect(needsEntitlement(buyer, dataset())).toBe(false);
    expect(needsEntitlement(owner, dataset({ access: "PURCHASED" }))).toBe(false);
    expect(needsEntitlement(admin, dataset({ access: "PURCHASED" }))).toBe(false);
  });

  it("never grants what it denies, and every denial has a stable client code", () => {
    for (const [, reader, data, entitled] of cases) {
      const decision = decideAccess(reader, data, entitled);
      if (decision.kind === "denied") {
        expect(grants(decision)).toBe(false);
        const error = deniedError(decision);
        expect(error.code).toBe(decision.code);
        if (decision.requiresPurchase) expect(error.fields).toMatchObject({ requiresPurchase: true });
        if (decision.keyDatasetScoped) expect(error.fields).toMatchObject({ keyDatasetScoped: true });
      } else {
        expect(grants(decision)).toBe(true);
      }
    }
  });
});
