import { Webhook } from "standardwebhooks";
import { describe, expect, it } from "vitest";
import {
  isSigningSecret,
  newSigningSecret,
  sign,
  webhookHeaders,
} from "../../src/deliveries/webhook.signing.js";
import { nextRetryDelay } from "../../src/deliveries/webhook.retry.js";

// The example of the Standard Webhooks specification's reference tests.
const SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SPEC_TIMESTAMP = 1614265330;
const SPEC_BODY = '{"test": 2432232314}';
const SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

describe("webhook signing", () => {
  it("matches the specification's example", () => {
    expect(sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)).toBe(SPEC_SIGNATURE);
  });

  it("makes whsec_ secrets of 32 random bytes", () => {
    const secret = newSigningSecret((n) => Buffer.alloc(n, 7));
    expect(secret).toBe(`whsec_${Buffer.alloc(32, 7).toString("base64")}`);
    expect(isSigningSecret(secret)).toBe(true);
    expect(isSigningSecret(newSigningSecret())).toBe(true);
    expect(newSigningSecret()).not.toBe(newSigningSecret());
    expect(isSigningSecret("whsec_c2hvcnQ=")).toBe(false);
    expect(isSigningSecret("sk_live_abc")).toBe(false);
  });

  it("builds headers the reference implementation verifies, at the clock given", () => {
    const now = new Date();
    const secret = newSigningSecret();
    const body = JSON.stringify({ type: "dataset.updated", timestamp: now.toISOString(), data: { n: 1 } });
    const headers = webhookHeaders("evt_1", now, body, [secret]);
    expect(headers["webhook-timestamp"]).toBe(String(Math.floor(now.getTime() / 1000)));
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow();
    expect(() => new Webhook(newSigningSecret()).verify(body, headers)).toThrow();
  });

  it("signs with every secret during a rotation, space-separated", () => {
    const now = new Date();
    const [oldSecret, newSecret] = [newSigningSecret(), newSigningSecret()];
    const headers = webhookHeaders("evt_2", now, "{}", [newSecret, oldSecret]);
    expect(headers["webhook-signature"].split(" ")).toHaveLength(2);
    expect(new Webhook(oldSecret).verify("{}", headers)).toEqual({});
    expect(new Webhook(newSecret).verify("{}", headers)).toEqual({});
  });

  it("is refused by the reference implementation when the timestamp is stale", () => {
    const secret = newSigningSecret();
    const headers = webhookHeaders("evt_3", new Date(Date.now() - 3600_000), "{}", [secret]);
    expect(() => new Webhook(secret).verify("{}", headers)).toThrow(/timestamp/i);
  });
});

describe("nextRetryDelay", () => {
  const schedule = [1000, 60_000, 3_600_000];

  it("follows the schedule, then gives up", () => {
    expect(nextRetryDelay(schedule, 1, 0)).toBe(1000);
    expect(nextRetryDelay(schedule, 2, 0)).toBe(60_000);
    expect(nextRetryDelay(schedule, 3, 0)).toBe(3_600_000);
    expect(nextRetryDelay(schedule, 4, 0)).toBeNull();
    expect(nextRetryDelay(schedule, 0, 0)).toBeNull();
  });

  it("spreads each delay by the jitter either way", () => {
    expect(nextRetryDelay(schedule, 2, 0.2, () => 0)).toBe(48_000);
    expect(nextRetryDelay(schedule, 2, 0.2, () => 1)).toBe(72_000);
    expect(nextRetryDelay(schedule, 2, 0.2, () => 0.5)).toBe(60_000);
  });
});
