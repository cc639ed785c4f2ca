import type { EventLoopUtilization } from "node:perf_hooks";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLogger } from "../../src/observability/logger.js";
import { collectWhenIdle, idleCollectionDue } from "../../src/observability/idle-collection.js";

const MB = 1024 * 1024;
const log = createLogger({ LOG_LEVEL: "silent" });

describe("idleCollectionDue", () => {
  const options = { maxUtilization: 0.05, marginBytes: 64 * MB };
  it.each([
    ["idle, heap grown past the margin", 0.01, 500 * MB, 200 * MB, true],
    ["idle at the bound, grown past the margin", 0.05, 265 * MB, 200 * MB, true],
    ["idle, grown by the margin only", 0.01, 264 * MB, 200 * MB, false],
    ["busy, heap grown", 0.5, 900 * MB, 200 * MB, false],
    ["just past the idle bound", 0.051, 900 * MB, 200 * MB, false],
    ["idle, heap below its floor", 0, 150 * MB, 200 * MB, false],
  ])("%s", (_case, utilization, heapTotal, floor, due) => {
    expect(idleCollectionDue({ utilization, heapTotal, floor }, options)).toBe(due);
  });
});

describe("collectWhenIdle", () => {
  afterEach(() => vi.useRealTimers());

  /** Drives the loop with scripted readings, one per look. */
  function drive(looks: { utilization: number; heapTotal: number }[], heapAtStart: number) {
    vi.useFakeTimers();
    const calls: string[] = [];
    let look = -1;
    let heap = heapAtStart;
    const gc = vi.fn(() => {
      calls.push(`gc at look ${look}`);
      heap = 120 * MB;
    });
    const stop = collectWhenIdle({
      gc,
      log,
      intervalMs: 1000,
      heapTotal: () => heap,
      // Called once for the interval's share, once to start the next interval.
      utilization: (previous) =>
        ({ utilization: previous ? looks[look]!.utilization : 0 }) as EventLoopUtilization,
    });
    for (look = 0; look < looks.length; look++) {
      heap = looks[look]!.heapTotal;
      vi.advanceTimersByTime(1000);
    }
    stop();
    return calls;
  }

  it("collects once after a burst, when the loop goes idle, and not again until the heap grows", () => {
    const calls = drive(
      [
        { utilization: 0.9, heapTotal: 500 * MB }, // the burst
        { utilization: 0.9, heapTotal: 900 * MB },
        { utilization: 0.01, heapTotal: 900 * MB }, // idle: collect (heap back to 120 MB)
        { utilization: 0.01, heapTotal: 150 * MB }, // grown, within the margin of the new floor
        { utilization: 0.01, heapTotal: 200 * MB }, // past it
        { utilization: 0.01, heapTotal: 130 * MB },
      ],
      200 * MB,
    );
    expect(calls).toEqual(["gc at look 2", "gc at look 4"]);
  });

  it("does nothing without gc (node without --expose-gc)", () => {
    vi.useFakeTimers();
    const heapTotal = vi.fn(() => 900 * MB);
    const stop = collectWhenIdle({ gc: undefined, log, intervalMs: 1000, heapTotal });
    vi.advanceTimersByTime(10_000);
    stop();
    expect(heapTotal).not.toHaveBeenCalled();
  });
});
