// /ready: each dependency checked in parallel with its own timeout, so an operator sees which
// one failed rather than a generic 503.

/**
 * Resolves when the dependency is usable; `false` means it is not. A check may resolve to facts
 * worth showing an operator (the ClickHouse engine and its version), reported beside `ok`.
 */
export type Check = () => Promise<unknown>;

export type CheckFacts = Record<string, string>;

export interface ReadinessReport {
  status: "ok" | "fail";
  failed: string[];
  checks: Record<string, { ok: boolean; ms: number; error?: string } & CheckFacts>;
}

function factsOf(result: unknown): CheckFacts {
  if (typeof result !== "object" || result === null || Array.isArray(result)) return {};
  return Object.fromEntries(
    Object.entries(result).filter((entry): entry is [string, string] => typeof entry[1] === "string"),
  );
}

export async function checkReadiness(
  checks: Record<string, Check>,
  timeoutMs: number,
): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => {
      const started = performance.now();
      try {
        const result = await withTimeout(check(), timeoutMs);
        if (result === false) throw new Error("not reachable");
        return [name, { ...factsOf(result), ok: true, ms: elapsed(started) }] as const;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        return [name, { ok: false, ms: elapsed(started), error: message.slice(0, 200) }] as const;
      }
    }),
  );
  const failed = entries.filter(([, r]) => !r.ok).map(([name]) => name);
  return { status: failed.length ? "fail" : "ok", failed, checks: Object.fromEntries(entries) };
}

const elapsed = (started: number) => Math.round(performance.now() - started);

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
