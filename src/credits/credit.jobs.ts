import type { JobDefinition } from "../jobs/boss.js";
import type { Services } from "../services.js";

/** Holds older than this are from reads that can no longer finish: no request lasts this long. */
export const STALE_HOLD_MS = 15 * 60 * 1000;

/**
 * Every five minutes, gives back credit holds left open by a process that died mid-read
 * (RESERVATION without RELEASE), so a crash never costs a buyer credits.
 */
export function releaseStaleHoldsJob(
  services: Pick<Services, "credits">,
  now: () => Date = () => new Date(),
): JobDefinition<Record<string, never>> {
  return {
    queue: "credits.release-stale-holds",
    schedule: "*/5 * * * *",
    options: { retryLimit: 2, expireInSeconds: 300 },
    async handle(_data, { log }) {
      const before = new Date(now().getTime() - STALE_HOLD_MS);
      const released = await services.credits.ledger.releaseStaleHolds(before);
      if (released > 0) log.warn({ released }, "released credit holds left open by interrupted reads");
    },
  };
}
