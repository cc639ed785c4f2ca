// The four plans every installation starts with.
import type { Plan } from "../generated/prisma/client.js";
import { PlanCode } from "../generated/prisma/enums.js";
import type { PrismaClient } from "./prisma.js";

/** What a plan starts as. Operators may change plans afterwards; seeding never overwrites them. */
export const DEFAULT_PLANS = [
  {
    code: PlanCode.FREE,
    name: "Free",
    requestsPerMinute: 100,
    hourlyQuota: null,
    monthlyQuota: null,
    startingCredits: 100n,
  },
  {
    code: PlanCode.BASIC,
    name: "Basic",
    requestsPerMinute: 1_000,
    hourlyQuota: null,
    monthlyQuota: null,
    startingCredits: 0n,
  },
  {
    code: PlanCode.PRO,
    name: "Pro",
    requestsPerMinute: 10_000,
    hourlyQuota: null,
    monthlyQuota: null,
    startingCredits: 0n,
  },
  {
    // The default; an ENTERPRISE account sets its own accounts.rate_limit_per_minute.
    code: PlanCode.ENTERPRISE,
    name: "Enterprise",
    requestsPerMinute: 10_000,
    hourlyQuota: null,
    monthlyQuota: null,
    startingCredits: 0n,
  },
] as const satisfies readonly Omit<Plan, "id" | "createdAt" | "updatedAt">[];

/**
 * Creates the plans that are missing and returns all four by code. Idempotent and safe to run
 * concurrently: one `INSERT ... ON CONFLICT (code) DO NOTHING`, so plans edited by an operator keep
 * their values.
 */
export async function seedPlans(prisma: PrismaClient): Promise<Record<PlanCode, Plan>> {
  await prisma.plan.createMany({ data: [...DEFAULT_PLANS], skipDuplicates: true });
  const plans = await prisma.plan.findMany({
    where: { code: { in: DEFAULT_PLANS.map((p) => p.code) } },
  });
  return Object.fromEntries(plans.map((plan) => [plan.code, plan])) as Record<PlanCode, Plan>;
}
