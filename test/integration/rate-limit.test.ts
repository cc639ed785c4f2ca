// The plan rate limiter against the real Redis: atomic counting under concurrency, quotas,
// refunds, key layout under the client's keyPrefix, window reset and both failure modes.
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis, type RedisOptions } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { RateLimiter, type RateLimitDecision, type RateLimitSubject } from "../../src/identity/rate-limit.js";
import { baseConfig } from "../support/databases.js";

// Every run writes under its own prefix, as the app does under REDIS_KEY_PREFIX; every test also
// counts its own subjects.
const prefix = `datahus-test:${randomUUID()}:`;
const appLike: RedisOptions = { enableOfflineQueue: false, maxRetriesPerRequest: 1, lazyConnect: true };
const clients: Redis[] = [];

async function connect(options: RedisOptions): Promise<Redis> {
  const client = new Redis(baseConfig().REDIS_URL!, options);
  clients.push(client);
  await client.connect();
  return client;
}

let redis: Redis;
/** No keyPrefix: sees the keys as they are really stored. */
let raw: Redis;

beforeAll(async () => {
  redis = await connect({ ...appLike, keyPrefix: prefix });
  raw = await connect(appLike);
});

afterAll(async () => {
  const keys = await raw.keys(`${prefix}*`);
  if (keys.length > 0) await raw.del(...keys);
  await Promise.all(clients.map((c) => c.quit()));
});

const silent = { warn: () => undefined };
const subject = (limits: Partial<Omit<RateLimitSubject, "key">> = {}): RateLimitSubject => ({
  key: `key:${randomUUID()}`,
  perMinute: 10,
  perHour: null,
  perMonth: null,
  ...limits,
});

async function consumeTimes(limiter: RateLimiter, s: RateLimitSubject, n: number) {
  const decisions: RateLimitDecision[] = [];
  for (let i = 0; i < n; i++) decisions.push(await limiter.consume(s));
  return decisions;
}

describe("RateLimiter on Redis", () => {
  it("allows exactly the limit under 50 concurrent requests from two processes", async () => {
    // Two connections stand for two API processes sharing the counters.
    const other = await connect({ ...appLike, keyPrefix: prefix });
    const limiters = [redis, other].map((r) => new RateLimiter(r, { failureMode: "closed", log: silent }));
    const s = subject({ perMinute: 10 });
    const started = Math.floor(Date.now() / 1000);

    const decisions = await Promise.all(Array.from({ length: 50 }, (_, i) => limiters[i % 2]!.consume(s)));
    // The window starts with the first request, which a busy machine may send a second or more
    // after `started`: it ends a minute after a moment between the two.
    const finished = Math.ceil(Date.now() / 1000);

    const allowed = decisions.filter((d) => d.allowed);
    const refused = decisions.filter((d) => !d.allowed);
    expect(allowed).toHaveLength(10);
    expect(refused).toHaveLength(40);
    expect(allowed.map((d) => d.remaining).sort((a, b) => b - a)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    for (const d of decisions) {
      expect(d.limit).toBe(10);
      expect(d.resetAt).toBeGreaterThan(started);
      expect(d.resetAt).toBeLessThanOrEqual(finished + 61);
    }
    for (const d of refused) {
      expect(d).toMatchObject({ window: "minute", remaining: 0 });
      expect(d.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(d.retryAfterSeconds).toBeLessThanOrEqual(60);
    }

    // Another subject is counted on its own.
    expect(await limiters[0]!.consume(subject({ perMinute: 10 }))).toMatchObject({
      allowed: true,
      remaining: 9,
    });
  });

  it("keeps each subject's count apart", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "closed", log: silent });
    const a = subject({ perMinute: 2 });
    const b = subject({ perMinute: 2 });
    expect((await consumeTimes(limiter, a, 3)).map((d) => d.allowed)).toEqual([true, true, false]);
    expect(await limiter.consume(b)).toMatchObject({ allowed: true, remaining: 1 });
    expect(await limiter.consume({ ...b, key: `ip:${b.key}` })).toMatchObject({
      allowed: true,
      remaining: 1,
    });
  });

  it("stores counters under the client's keyPrefix, with the window's TTL", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "closed", log: silent });
    const s = subject();
    await consumeTimes(limiter, s, 2);
    const key = `${prefix}rl:minute:${s.key}`;
    expect(await raw.get(key)).toBe("2");
    const ttl = await raw.pttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it("refuses on the hourly quota and refunds the minute", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "closed", log: silent });
    const s = subject({ perMinute: 100, perHour: 3 });

    const decisions = await consumeTimes(limiter, s, 5);

    expect(decisions.map((d) => d.allowed)).toEqual([true, true, true, false, false]);
    expect(decisions.slice(0, 3).map((d) => d.remaining)).toEqual([99, 98, 97]);
    const refused = decisions[3]!;
    expect(refused).toMatchObject({ allowed: false, limit: 100, remaining: 0, window: "hour" });
    expect(refused.retryAfterSeconds).toBeGreaterThan(60);
    expect(refused.retryAfterSeconds).toBeLessThanOrEqual(3600);
    // Refused requests do not use up the minute window.
    expect(await raw.get(`${prefix}rl:minute:${s.key}`)).toBe("3");
  });

  it("refuses on the monthly quota and refunds the minute and the hour", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "closed", log: silent });
    const s = subject({ perMinute: 100, perHour: 50, perMonth: 2 });

    const decisions = await consumeTimes(limiter, s, 3);

    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(decisions[2]).toMatchObject({ window: "month", remaining: 0 });
    expect(decisions[2]!.retryAfterSeconds).toBeGreaterThan(3600);
    expect(decisions[2]!.retryAfterSeconds).toBeLessThanOrEqual(30 * 24 * 3600);
    expect(await raw.get(`${prefix}rl:minute:${s.key}`)).toBe("2");
    expect(await raw.get(`${prefix}rl:hour:${s.key}`)).toBe("2");
  });

  it("keeps the count when the subject's limit changes mid-window (plan upgrade)", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "closed", log: silent });
    const s = subject({ perMinute: 3 });
    await consumeTimes(limiter, s, 3);
    expect(await limiter.consume({ ...s, perMinute: 10 })).toMatchObject({ allowed: true, remaining: 6 });
  });

  it("allows the subject again once the window has passed", async () => {
    const limiter = new RateLimiter(redis, {
      failureMode: "closed",
      log: silent,
      windowSeconds: { minute: 1 },
    });
    const s = subject({ perMinute: 2 });
    const decisions = await consumeTimes(limiter, s, 3);
    expect(decisions.map((d) => d.allowed)).toEqual([true, true, false]);
    expect(decisions[2]!.retryAfterSeconds).toBe(1);

    await sleep(decisions[2]!.retryAfterSeconds! * 1000 + 100);

    expect(await limiter.consume(s)).toMatchObject({ allowed: true, remaining: 1 });
  });

  it("rejects subjects with invalid limits before touching Redis", async () => {
    const limiter = new RateLimiter(redis, { failureMode: "open", log: silent });
    await expect(limiter.consume(subject({ perMinute: 0 }))).rejects.toThrow(/perMinute/);
    await expect(limiter.consume(subject({ perHour: 1.5 }))).rejects.toThrow(/perHour/);
    await expect(limiter.consume({ ...subject(), key: "" })).rejects.toThrow(/key/);
  });
});

describe("RateLimiter when Redis fails", () => {
  let unreachable: Redis;

  beforeAll(async () => {
    // Nothing listens on port 1: the connection is refused and, with no retry, the client ends.
    unreachable = new Redis({
      host: "127.0.0.1",
      port: 1,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      lazyConnect: true,
      retryStrategy: () => null,
    });
    unreachable.on("error", () => undefined);
    await unreachable.connect().catch(() => undefined);
  });

  afterAll(() => {
    unreachable.disconnect();
  });

  it("lets requests through, degraded, in open mode and warns at most every 10 s", async () => {
    let now = Date.parse("2030-01-01T00:00:00Z");
    const warnings: object[] = [];
    const limiter = new RateLimiter(unreachable, {
      failureMode: "open",
      log: { warn: (obj) => warnings.push(obj) },
      now: () => now,
    });
    const s = subject({ perMinute: 100, perHour: 1000 });

    const first = await limiter.consume(s);
    now += 5_000;
    await limiter.consume(s);
    expect(warnings).toHaveLength(1);
    now += 5_000;
    await limiter.consume(s);

    expect(first).toEqual({
      allowed: true,
      limit: 100,
      remaining: 100,
      resetAt: now / 1000 - 10 + 60,
      degraded: true,
    });
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatchObject({ failureMode: "open", suppressed: 1, err: { name: "Error" } });
  });

  it("throws SERVICE_UNAVAILABLE in closed mode", async () => {
    const limiter = new RateLimiter(unreachable, { failureMode: "closed", log: silent });
    const error = await limiter.consume(subject()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect(error).toMatchObject({ code: "SERVICE_UNAVAILABLE", fields: { retryAfterSeconds: 5 } });
  });

  it("treats a failing command on a live server as an outage too", async () => {
    const s = subject();
    // INCRBY fails on a value that is not an integer.
    await raw.set(`${prefix}rl:minute:${s.key}`, "not-a-number", "EX", 60);
    const warnings: object[] = [];
    const open = new RateLimiter(redis, { failureMode: "open", log: { warn: (obj) => warnings.push(obj) } });
    const closed = new RateLimiter(redis, { failureMode: "closed", log: silent });

    expect(await open.consume(s)).toMatchObject({ allowed: true, degraded: true, remaining: 10 });
    await expect(closed.consume(s)).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    // The logged error carries no command arguments.
    expect(JSON.stringify(warnings)).not.toContain(s.key);
  });
});
