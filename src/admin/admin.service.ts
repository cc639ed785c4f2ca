// Platform administration: users' roles, plans, and the admin log every admin change writes to
// (admin-log.ts), in the same transaction as the change.
import { ModelReader } from "../db/model-reader.js";
import { AppError } from "../errors.js";
import type {
  AdminLogEntry,
  Plan,
  PlanCode,
  PrismaClient,
  User,
  UserRole,
} from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageArgs, PageLimits } from "../pagination.js";
import { logAdminAction } from "./admin-log.js";
import { newEvent, type AccessRevoked, type EventBus } from "../events/events.js";

export interface PlanChanges {
  requestsPerMinute?: number | null;
  /** null removes the quota; undefined leaves it. */
  hourlyQuota?: number | null;
  monthlyQuota?: number | null;
  startingCredits?: number | null;
}

export class AdminService {
  readonly log: ModelReader<AdminLogEntry>;

  constructor(
    private readonly prisma: PrismaClient,
    limits: PageLimits,
    /** Tells every API process to forget the callers a change affects (identity-cache.ts). */
    private readonly events?: EventBus,
  ) {
    this.log = new ModelReader(prisma.adminLogEntry, "adminLogEntry", limits);
  }

  /** The admin log, oldest first, optionally of one action. */
  logPage(caller: Caller, args: PageArgs, action: string | null) {
    authorize(caller, ["ADMIN", "admin"]);
    return this.log.page(caller, args, action ? { action } : {});
  }

  /** Promotes or demotes a user; their keys follow at once (a key never holds more than its role). */
  async setUserRole(caller: Caller, userId: string, role: UserRole): Promise<User> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    if (userId === who.userId) throw new AppError("CONFLICT", "Admins cannot change their own role");
    const updated = await this.prisma.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId } });
      if (!user) throw new AppError("NOT_FOUND", "User not found");
      const changed = await tx.user.update({ where: { id: userId }, data: { role } });
      await logAdminAction(tx, who, "user.role", { type: "User", id: userId }, { from: user.role, to: role });
      return changed;
    });
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", {
        accountId: updated.accountId,
        apiKeyId: null,
        reason: "ROLE_CHANGED",
      }),
    );
    return updated;
  }

  /** Changes a plan's limits and starting credits; accounts on it get them from their next request. */
  async updatePlan(caller: Caller, code: PlanCode, changes: PlanChanges): Promise<Plan> {
    const who = authorize(caller, ["ADMIN", "admin"]);
    const data: Record<string, number | bigint | null> = {};
    const positive = (value: number, argument: string) => {
      if (!Number.isSafeInteger(value) || value < 1 || value > 2_147_483_647) {
        throw new AppError("BAD_USER_INPUT", `${argument} must be a whole number >= 1`, { argument });
      }
      return value;
    };
    if (changes.requestsPerMinute != null)
      data.requestsPerMinute = positive(changes.requestsPerMinute, "requestsPerMinute");
    if (changes.hourlyQuota !== undefined) {
      data.hourlyQuota = changes.hourlyQuota === null ? null : positive(changes.hourlyQuota, "hourlyQuota");
    }
    if (changes.monthlyQuota !== undefined) {
      data.monthlyQuota =
        changes.monthlyQuota === null ? null : positive(changes.monthlyQuota, "monthlyQuota");
    }
    if (changes.startingCredits != null) {
      if (!Number.isSafeInteger(changes.startingCredits) || changes.startingCredits < 0) {
        throw new AppError("BAD_USER_INPUT", "startingCredits must be a whole number >= 0", {
          argument: "startingCredits",
        });
      }
      data.startingCredits = BigInt(changes.startingCredits);
    }
    const updated = await this.prisma.$transaction(async (tx) => {
      const plan = await tx.plan.findUnique({ where: { code } });
      if (!plan) throw new AppError("NOT_FOUND", "Plan not found");
      const changed = await tx.plan.update({ where: { code }, data });
      const details = Object.fromEntries(
        Object.entries(data).map(([k, v]) => [k, v === null ? null : Number(v)]),
      );
      await logAdminAction(tx, who, "plan.update", { type: "Plan", id: plan.id }, { code, ...details });
      return changed;
    });
    // Every account on the plan: every process forgets every remembered caller.
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", { accountId: "*", apiKeyId: null, reason: "PLAN_CHANGED" }),
    );
    return updated;
  }
}
