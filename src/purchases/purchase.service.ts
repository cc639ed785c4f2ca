// A buyer's entitlements: the purchases connection, and cancelling (or resuming) a MONTHLY
// purchase's renewal. Buying lives in credits/ledger.ts `purchase`; renewing in renewal.ts.
import type { BalanceWatch } from "../credits/low-credit.js";
import { ModelReader } from "../db/model-reader.js";
import { badInput, notFound } from "../errors.js";
import type { EventBus } from "../events/events.js";
import type { PrismaClient, Purchase, PurchaseStatus } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageArgs, PageLimits } from "../pagination.js";
import { PurchaseRenewals } from "./renewal.js";

export class PurchaseService {
  readonly purchases: ModelReader<Purchase>;
  readonly renewals: PurchaseRenewals;

  constructor(
    private readonly prisma: PrismaClient,
    events: EventBus,
    watch: BalanceWatch,
    limits: PageLimits,
    renewalLeadMs: number,
  ) {
    this.purchases = new ModelReader(prisma.purchase, "purchase", limits);
    this.renewals = new PurchaseRenewals(prisma, events, watch, renewalLeadMs);
  }

  /** The caller's purchases (admins: everyone's), oldest first, optionally of one status. */
  page(caller: Caller, args: PageArgs, status: PurchaseStatus | null) {
    authorize(caller, ["account:read"]);
    return this.purchases.page(caller, args, status ? { status } : {});
  }

  /**
   * Turns a MONTHLY purchase's renewal off (it lapses at its term end, access kept until then) or
   * back on. ONE_TIME purchases never end: there is nothing to cancel.
   */
  async setAutoRenew(caller: Caller, purchaseId: string, autoRenew: boolean): Promise<Purchase> {
    const who = authorize(caller, ["account:write"]);
    const purchase = await this.prisma.purchase.findFirst({
      where: { id: purchaseId, ...(who.role === "ADMIN" ? {} : { accountId: who.accountId }) },
    });
    if (!purchase) throw notFound("Purchase");
    if (purchase.expiresAt === null) {
      throw badInput("A ONE_TIME purchase does not renew: there is nothing to cancel", { argument: "id" });
    }
    if (purchase.status !== "ACTIVE") {
      throw badInput(`This purchase is ${purchase.status}: buy the dataset again instead`, {
        argument: "id",
      });
    }
    return this.prisma.purchase.update({ where: { id: purchase.id }, data: { autoRenew } });
  }
}
