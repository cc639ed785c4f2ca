import { expect, it } from "vitest";
import { Pump } from "../../src/deliveries/webhook.wake.js";
import { until } from "../support/wait.js";

const HOUR = 3_600_000;
const log = { error: () => {} };

it("claims again when rung, with no poll due", async () => {
  let claims = 0;
  const pump = new Pump(async () => (claims++, 0), { loops: 1, batch: 10, pollMs: HOUR }, log);
  pump.start();
  await until("the first claim", () => claims === 1);
  pump.wake.ring();
  await until("a claim after the ring", () => claims === 2);
  await pump.stop();
  expect(claims).toBe(2);
});

it("claims again at once after a full batch, and waits after a short one", async () => {
  const taken = [10, 10, 3];
  let claims = 0;
  const pump = new Pump(async () => taken[claims++] ?? 0, { loops: 1, batch: 10, pollMs: HOUR }, log);
  pump.start();
  await until("three claims", () => claims === 3);
  // The third came back short: the loop now waits for a ring (an hour's poll here).
  await new Promise((resolve) => setImmediate(resolve));
  expect(claims).toBe(3);
  await pump.stop();
});

it("does not miss a ring that comes while a claim runs", async () => {
  let claims = 0;
  const pump: Pump = new Pump(
    async () => {
      // Tries queued while this claim runs: the loop must claim again instead of waiting.
      if (claims++ === 0) pump.wake.ring();
      return 0;
    },
    { loops: 1, batch: 10, pollMs: HOUR },
    log,
  );
  pump.start();
  await until("a second claim", () => claims === 2);
  await pump.stop();
});
