// Plan rate limits and quotas, counted in Redis by rate-limiter-flexible. Its Redis store
// increments with one Lua script (SET NX EX + INCRBY + PTTL), so concurrent requests from any
// number of processes can never overshoot a limit; graphql-rate-limit's GET-then-SET could
// (docs/architecture.md §3).
//
// Windows are fixed and start at the subject's first request in them (the key's TTL), not on the
// clock: a minute window opened at 12:00:40 resets at 12:01:40. The "month" is likewise a 30-day
// window from the first request, not a calendar month: the counter stays one atomic INCR with a
// TTL, and no subject's quota resets at the same instant as everyone else's. Billing by calendar
// month belongs to usage metering, not to this guard.
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from "rate-limiter-flexible";
import { AppError, ErrorCode } from "../errors.js";
import type { AuthenticatedCaller } from "./caller.js";

export type RateLimitWindow = "minute" | "hour" | "month";

export interface RateLimitSubject {
  /** Stable id of who is counted, e.g. "key:<uuid>", "user:<uuid>", "ip:127.0.0.1". Never a secret. */
  key: string;
  perMinute: number;
  perHour: number | null;
  /** Counted over a 30-day window from the first request in it (see the note at the top). */
  perMonth: number | null;
}

/** An authenticated caller counts against its plan's limits, per API key or per dashboard user. */
export function callerSubject(caller: AuthenticatedCaller): RateLimitSubject {
  return {
    key: caller.kind === "apiKey" ? `key:${caller.apiKeyId}` : `user:${caller.userId}`,
    ...caller.limits,
  };
}

export interface RateLimitDecision {
  allowed: boolean;
  /** The per-minute limit (what X-RateLimit-Limit announces). */
  limit: number;
  /**
   * Requests left in the current minute window after this one (never negative). 0 on every
   * refusal, including one by the hourly or monthly quota: no request would succeed now.
   */
  remaining: number;
  /** Unix epoch seconds when the minute window resets (X-RateLimit-Reset, GitHub's convention). */
  resetAt: number;
  /** Set when !allowed: whole seconds until a retry can succeed (ceil; at least 1). */
  retryAfterSeconds?: number;
  /** Which window refused; the one with the longest wait when several did. */
  window?: RateLimitWindow;
  /** True when Redis was unreachable and the failure mode let the request through. */
  degraded?: boolean;
}

export interface RateLimiterOptions {
  /** What to do when Redis fails: let requests through ("open") or refuse them ("closed"). */
  failureMode: "open" | "closed";
  log: { warn(obj: object, msg: string): void };
  /** Clock in epoch milliseconds. @default Date.now */
  now?: () => number;
  /** Window lengths in whole seconds, shortened by tests. @default { minute: 60, hour: 3600, month: 2592000 } */
  windowSeconds?: Partial<Record<RateLimitWindow, number>>;
}

const DEFAULT_WINDOW_SECONDS: Record<RateLimitWindow, number> = {
  minute: 60,
  hour: 60 * 60,
  month: 30 * 24 * 60 * 60,
};

const WARN_INTERVAL_MS = 10_000;
const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** Counters in Redis (shared by every process) or, with no Redis, in this process alone. */
type WindowLimiter = RateLimiterRedis | RateLimiterMemory;

interface Attempt {
  window: RateLimitWindow;
  limiter: WindowLimiter;
  allowed: boolean;
  res: RateLimiterRes;
}

export class RateLimiter {
  readonly #redis: Redis | null;
  readonly #failureMode: "open" | "closed";
  readonly #log: RateLimiterOptions["log"];
  readonly #now: () => number;
  readonly #windowSeconds: Record<RateLimitWindow, number>;
  /** One limiter per (window, points): plans differ and enterprise accounts set their own. */
  readonly #limiters = new Map<string, WindowLimiter>();
  #lastWarnAt = Number.NEGATIVE_INFINITY;
  #suppressedWarnings = 0;

  /** `redis` null: counters live in this process (one-process mode without Redis). */
  constructor(redis: Redis | null, options: RateLimiterOptions) {
    this.#redis = redis;
    this.#failureMode = options.failureMode;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
    this.#windowSeconds = { ...DEFAULT_WINDOW_SECONDS, ...options.windowSeconds };
    for (const [window, seconds] of Object.entries(this.#windowSeconds)) {
      // rate-limiter-flexible floors durations to seconds; 0 would mean a counter that never expires.
      assert(
        Number.isSafeInteger(seconds) && seconds >= 1,
        `windowSeconds.${window} must be a whole number of seconds >= 1`,
      );
    }
  }

  /**
   * Counts one request for the subject. The minute window is consumed first; the hourly and
   * monthly quotas only when it allows. A request refused by any window is refunded in the
   * windows that had counted it, so refusals never eat into a quota.
   *
   * Throws AppError SERVICE_UNAVAILABLE when Redis fails and the failure mode is "closed".
   */
  async consume(subject: RateLimitSubject): Promise<RateLimitDecision> {
    assertSubject(subject);
    try {
      return await this.#consume(subject);
    } catch (err) {
      return this.#unavailable(subject, err);
    }
  }

  async #consume(subject: RateLimitSubject): Promise<RateLimitDecision> {
    const minute = await this.#attempt(subject.key, "minute", subject.perMinute);
    if (!minute.allowed) return this.#refused(subject, minute, [minute]);

    const quotas: [RateLimitWindow, number | null][] = [
      ["hour", subject.perHour],
      ["month", subject.perMonth],
    ];
    const attempts = await Promise.all(
      quotas.flatMap(([window, points]) =>
        points === null ? [] : [this.#attempt(subject.key, window, points)],
      ),
    );
    const refusals = attempts.filter((a) => !a.allowed);
    if (refusals.length === 0) {
      return {
        allowed: true,
        limit: subject.perMinute,
        remaining: minute.res.remainingPoints,
        resetAt: this.#epochSecondsAfter(minute.res.msBeforeNext),
      };
    }

    // Best effort: if Redis fails between the consume and the refund, the request stays refused
    // and the subject loses one point until the window resets. (If a window expires between the
    // two, the refund opens the next one at -1: one extra request, equally harmless.)
    const counted = [minute, ...attempts.filter((a) => a.allowed)];
    await Promise.allSettled(counted.map((a) => a.limiter.reward(subject.key, 1)));
    return this.#refused(subject, minute, refusals);
  }

  async #attempt(key: string, window: RateLimitWindow, points: number): Promise<Attempt> {
    const limiter = this.#limiter(window, points);
    try {
      return { window, limiter, allowed: true, res: await limiter.consume(key, 1) };
    } catch (rejection) {
      // rate-limiter-flexible rejects with a RateLimiterRes when over the limit and with an Error
      // when the store fails; only the latter is an outage.
      if (rejection instanceof RateLimiterRes) return { window, limiter, allowed: false, res: rejection };
      throw rejection;
    }
  }

  #limiter(window: RateLimitWindow, points: number): WindowLimiter {
    const cacheKey = `${window}:${points}`;
    let limiter = this.#limiters.get(cacheKey);
    if (!limiter && !this.#redis) {
      limiter = new RateLimiterMemory({
        keyPrefix: `rl:${window}`,
        points,
        duration: this.#windowSeconds[window],
      });
      this.#limiters.set(cacheKey, limiter);
    }
    if (!limiter) {
      limiter = new RateLimiterRedis({
        // ioredis is the package's default client: `useRedisPackage` is for node-redis v4+ only.
        // Its Lua script is registered with `defineCommand`, so ioredis applies the client's own
        // `keyPrefix` to it: keys end up as "<REDIS_KEY_PREFIX>rl:<window>:<subject key>".
        storeClient: this.#redis,
        // Shared by every limit of the window, so a plan change mid-window keeps its count.
        keyPrefix: `rl:${window}`,
        points,
        duration: this.#windowSeconds[window],
        // Fail at once while disconnected, whatever the client's offline queue setting: a request
        // must never wait on a reconnect loop. No insuranceLimiter: failure handling is ours.
        rejectIfRedisNotReady: true,
      });
      this.#limiters.set(cacheKey, limiter);
    }
    return limiter;
  }

  #refused(subject: RateLimitSubject, minute: Attempt, refusals: Attempt[]): RateLimitDecision {
    // A retry succeeds only once every refusing window has reset.
    const longest = refusals.reduce((a, b) => (b.res.msBeforeNext > a.res.msBeforeNext ? b : a));
    return {
      allowed: false,
      limit: subject.perMinute,
      remaining: 0,
      resetAt: this.#epochSecondsAfter(minute.res.msBeforeNext),
      retryAfterSeconds: Math.max(1, Math.ceil(longest.res.msBeforeNext / 1000)),
      window: longest.window,
    };
  }

  #unavailable(subject: RateLimitSubject, err: unknown): RateLimitDecision {
    this.#warn(err);
    if (this.#failureMode === "closed") {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        "Rate limiting is unavailable; retry shortly",
        { retryAfterSeconds: UNAVAILABLE_RETRY_AFTER_SECONDS },
        { cause: err },
      );
    }
    return {
      allowed: true,
      limit: subject.perMinute,
      remaining: subject.perMinute,
      resetAt: this.#epochSecondsAfter(this.#windowSeconds.minute * 1000),
      degraded: true,
    };
  }

  /** Once per WARN_INTERVAL_MS at most: during an outage every request fails the same way. */
  #warn(err: unknown): void {
    const now = this.#now();
    if (now - this.#lastWarnAt < WARN_INTERVAL_MS) {
      this.#suppressedWarnings++;
      return;
    }
    this.#log.warn(
      { err: describeError(err), failureMode: this.#failureMode, suppressed: this.#suppressedWarnings },
      this.#failureMode === "open"
        ? "rate limiting unavailable (Redis failed); letting requests through"
        : "rate limiting unavailable (Redis failed); refusing requests",
    );
    this.#lastWarnAt = now;
    this.#suppressedWarnings = 0;
  }

  #epochSecondsAfter(ms: number): number {
    return Math.ceil((this.#now() + Math.max(0, ms)) / 1000);
  }
}

/** X-RateLimit-* headers (GitHub's names), plus Retry-After on a refusal. */
export function rateLimitHeaders(decision: RateLimitDecision): Record<string, string> {
  const headers: Record<string, string> = {
    "X-RateLimit-Limit": String(decision.limit),
    "X-RateLimit-Remaining": String(Math.max(0, decision.remaining)),
    "X-RateLimit-Reset": String(decision.resetAt),
  };
  if (!decision.allowed) {
    headers["Retry-After"] = String(Math.max(1, Math.ceil(decision.retryAfterSeconds ?? 1)));
  }
  return headers;
}

function assertSubject(subject: RateLimitSubject): void {
  assert(subject.key.length > 0, "RateLimitSubject.key must not be empty");
  for (const field of ["perMinute", "perHour", "perMonth"] as const) {
    const value = subject[field];
    if (value === null && field !== "perMinute") continue;
    assert(
      Number.isSafeInteger(value) && (value as number) >= 1,
      `RateLimitSubject.${field} must be a positive integer${field === "perMinute" ? "" : " or null"}`,
    );
  }
}

/**
 * Only the name, code and message: ioredis attaches the failed command and its arguments to
 * reply errors (`err.command.args`), which for AUTH would be the password.
 */
function describeError(err: unknown): { name: string; message: string; code?: string } {
  if (!(err instanceof Error)) return { name: "Error", message: String(err) };
  const code = (err as { code?: unknown }).code;
  return typeof code === "string"
    ? { name: err.name, message: err.message, code }
    : { name: err.name, message: err.message };
}
