import { describe, expect, it } from "vitest";
import { rateLimitHeaders } from "../../src/identity/rate-limit.js";

describe("rateLimitHeaders", () => {
  it("announces limit, remaining and reset on an allowed request", () => {
    expect(rateLimitHeaders({ allowed: true, limit: 100, remaining: 42, resetAt: 1_900_000_060 })).toEqual({
      "X-RateLimit-Limit": "100",
      "X-RateLimit-Remaining": "42",
      "X-RateLimit-Reset": "1900000060",
    });
  });

  it("adds Retry-After on a refusal", () => {
    expect(
      rateLimitHeaders({
        allowed: false,
        limit: 100,
        remaining: 0,
        resetAt: 1_900_000_060,
        retryAfterSeconds: 1800,
        window: "hour",
      }),
    ).toEqual({
      "X-RateLimit-Limit": "100",
      "X-RateLimit-Remaining": "0",
      "X-RateLimit-Reset": "1900000060",
      "Retry-After": "1800",
    });
  });

  it("never announces a negative remaining or a Retry-After below 1 s", () => {
    const headers = rateLimitHeaders({
      allowed: false,
      limit: 5,
      remaining: -3,
      resetAt: 1,
      retryAfterSeconds: 0,
    });
    expect(headers["X-RateLimit-Remaining"]).toBe("0");
    expect(headers["Retry-After"]).toBe("1");
    expect(rateLimitHeaders({ allowed: false, limit: 5, remaining: 0, resetAt: 1 })["Retry-After"]).toBe("1");
  });

  it("announces the full limit on a degraded (fail-open) decision", () => {
    expect(
      rateLimitHeaders({ allowed: true, limit: 1000, remaining: 1000, resetAt: 60, degraded: true }),
    ).toEqual({ "X-RateLimit-Limit": "1000", "X-RateLimit-Remaining": "1000", "X-RateLimit-Reset": "60" });
  });
});
