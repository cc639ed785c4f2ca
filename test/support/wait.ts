/**
 * Polls `check` until it returns something truthy, and returns that; throws naming `what` once
 * `timeoutMs` has passed. For work that finishes in the background (jobs, deliveries).
 */
export async function until<T>(
  what: string,
  check: () => Promise<T | null | false | undefined> | T | null | false | undefined,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
