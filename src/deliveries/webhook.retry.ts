// When to try a failed webhook again. Pure: the randomness comes in as an argument.

/**
 * The delay before the next try after `triesMade` failed tries of one event, or null when the
 * schedule is spent (the event is then dead). Each delay is spread by up to `jitter` of itself
 * either way, so the retries of many events failing together do not arrive in lockstep.
 */
export function nextRetryDelay(
  schedule: readonly number[],
  triesMade: number,
  jitter: number,
  random: () => number = Math.random,
): number | null {
  const base = schedule[triesMade - 1];
  if (base === undefined || triesMade < 1) return null;
  return Math.max(0, Math.round(base * (1 + jitter * (2 * random() - 1))));
}
