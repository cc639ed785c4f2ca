import { ModelReader } from "../db/model-reader.js";
import { AppError } from "../errors.js";
import { newEvent, type AccessRevoked, type EventBus } from "../events/events.js";
import type { Account, Plan, PlanCode, PrismaClient, User } from "../generated/prisma/client.js";
import type { Page, PageArgs, PageLimits } from "../pagination.js";
import { authorize } from "./authorization.js";
import type { Caller } from "./caller.js";

export class AccountService {
  readonly accounts: ModelReader<Account>;
  readonly users: ModelReader<User>;

  constructor(
    private readonly prisma: PrismaClient,
    limits: PageLimits,
    private readonly events?: Pick<EventBus, "publish">,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.accounts = new ModelReader(prisma.account, "account", limits);
    this.users = new ModelReader(prisma.user, "user", limits);
  }

  /** Accounts the caller may see; admins search all of them by name, slug or a user's email. */
  list(caller: Caller, args: PageArgs, search?: string | null): Promise<Page<Account>> {
    authorize(caller, ["account:read"]);
    const term = search?.trim();
    const filter = term
      ? {
          OR: [
            { name: { contains: term, mode: "insensitive" } },
            { slug: { contains: term, mode: "insensitive" } },
            { users: { some: { email: { contains: term.toLowerCase() } } } },
          ],
        }
      : {};
    return this.accounts.page(caller, args, filter);
  }

  async me(caller: Caller): Promise<{ user: User; account: Account }> {
    const who = authorize(caller);
    const user = await this.prisma.user.findUniqueOrThrow({
      where: { id: who.userId },
      include: { account: true },
    });
    return { user, account: user.account };
  }

  async idBySlug(slug: string): Promise<string | null> {
    const row = await this.prisma.account.findUnique({ where: { slug }, select: { id: true } });
    return row?.id ?? null;
  }

  /** Plans by id, in the order asked (for the per-request loader behind Account.plan). */
  async plans(planIds: readonly string[]): Promise<(Plan | null)[]> {
    const rows = await this.prisma.plan.findMany({ where: { id: { in: [...planIds] } } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    return planIds.map((id) => byId.get(id) ?? null);
  }

  async setPlan(caller: Caller, accountId: string, code: PlanCode, rateLimitPerMinute?: number | null) {
    authorize(caller, ["ADMIN", "admin"]);
    if (rateLimitPerMinute != null && code !== "ENTERPRISE") {
      throw new AppError("BAD_USER_INPUT", "Only ENTERPRISE accounts have their own rate limit", {
        argument: "rateLimitPerMinute",
      });
    }
    if (rateLimitPerMinute != null && (rateLimitPerMinute < 1 || rateLimitPerMinute > 1_000_000)) {
      throw new AppError("BAD_USER_INPUT", "rateLimitPerMinute must be 1 to 1000000", {
        argument: "rateLimitPerMinute",
      });
    }
    const plan = await this.prisma.plan.findUniqueOrThrow({ where: { code } });
    const account = await this.update(accountId, {
      planId: plan.id,
      rateLimitPerMinute: rateLimitPerMinute ?? null,
    });
    // Every API process forgets the account's remembered callers, whose limits were the old plan's.
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", { accountId, apiKeyId: null, reason: "PLAN_CHANGED" }),
    );
    return account;
  }

  /**
   * Suspension takes effect on the next request on every API process (each forgets the account's
   * remembered callers on access.revoked) and closes the account's live subscriptions at once.
   */
  async suspend(caller: Caller, accountId: string) {
    const who = authorize(caller, ["ADMIN", "admin"]);
    if (who.accountId === accountId)
      throw new AppError("CONFLICT", "Admins cannot suspend their own account");
    const account = await this.update(accountId, { status: "SUSPENDED", suspendedAt: this.now() });
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", { accountId, apiKeyId: null, reason: "ACCOUNT_SUSPENDED" }),
    );
    return account;
  }

  async reinstate(caller: Caller, accountId: string) {
    authorize(caller, ["ADMIN", "admin"]);
    return this.update(accountId, { status: "ACTIVE", suspendedAt: null });
  }

  private async update(accountId: string, data: Parameters<PrismaClient["account"]["update"]>[0]["data"]) {
    const found = await this.prisma.account.findUnique({ where: { id: accountId }, select: { id: true } });
    if (!found) throw new AppError("NOT_FOUND", "Account not found");
    return this.prisma.account.update({ where: { id: accountId }, data });
  }
}
