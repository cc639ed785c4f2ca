import type { JobDefinition } from "../jobs/boss.js";
import type { Services } from "../services.js";

export const RENEWAL_QUEUE = "purchases.renew";

/**
 * Every minute: renews MONTHLY purchases due within the lead time and lapses those that ended
 * (purchases/renewal.ts). Safe to run on every worker at once; pg-boss runs each cron tick once
 * cluster-wide anyway, and an extra send (an operator, a test) renews nothing twice.
 */
export function renewPurchasesJob(
  services: Pick<Services, "purchases">,
  now: () => Date = () => new Date(),
): JobDefinition<Record<string, never>> {
  return {
    queue: RENEWAL_QUEUE,
    schedule: "* * * * *",
    options: { retryLimit: 2, expireInSeconds: 300 },
    async handle(_data, { log }) {
      const tick = await services.purchases.renewals.tick(now());
      if (tick.renewed + tick.failed + tick.lapsed > 0) log.info(tick, "purchase renewals");
    },
  };
}
