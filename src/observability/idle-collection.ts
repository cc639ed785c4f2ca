// Gives memory back once a burst is over. Under load V8 grows its heap (the burst's garbage, the
// pages it pools for reuse) and, once requests stop, keeps it: its memory reducer judges the
// allocation rate from the last collections, all made under load, and an idle process allocates
// too little to collect again. Measured on `datahus serve` (bench/README.md "Load shedding"): 440
// MB before 200 connections for a minute, 935 MB after and still a minute later, with about 120
// MB of the heap alive; one memory-reducing collection brought it to 413 MB.
//
// So the process looks every few seconds: when its event loop was nearly idle and V8's heap holds
// well more than it did after the last such collection, it runs one. It needs the `gc` function
// (`node --expose-gc`, as the Dockerfile, `npm start` and scripts/start.sh run it); without it,
// nothing happens.
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";
import type { Logger } from "./logger.js";

/** What one look found. */
export interface IdleReading {
  /** Share of the last interval the event loop was busy, 0..1. */
  utilization: number;
  /** V8's committed heap now, bytes. */
  heapTotal: number;
  /** V8's committed heap after the last collection this module ran (or at start), bytes. */
  floor: number;
}

export interface IdleCollectionOptions {
  /** Busier than this share of the interval, the process is not idle (V8 collects on its own). */
  maxUtilization: number;
  /** Growth of the committed heap over the floor that is worth a collection, bytes. */
  marginBytes: number;
}

export const IDLE_COLLECTION_DEFAULTS: IdleCollectionOptions = {
  maxUtilization: 0.05,
  marginBytes: 64 * 1024 * 1024,
};

/** True when the process is idle and holds a heap grown well past what it needed last time. */
export function idleCollectionDue(reading: IdleReading, options = IDLE_COLLECTION_DEFAULTS): boolean {
  return (
    reading.utilization <= options.maxUtilization && reading.heapTotal > reading.floor + options.marginBytes
  );
}

/**
 * V8's `gc` as `--expose-gc` defines it: a major collection ("last-resort" also returns pooled pages
 * and shrinks the young generation) or a minor one (the young generation only).
 */
export type ExposedGc = (
  options: { type: "major"; execution: "sync"; flavor: "last-resort" } | { type: "minor"; execution: "sync" },
) => void;

/** The `gc` function when node runs with --expose-gc. */
export const exposedGc = () => (globalThis as { gc?: unknown }).gc as ExposedGc | undefined;

export interface IdleCollectionDeps {
  gc: ExposedGc | undefined;
  log: Logger;
  intervalMs?: number;
  options?: IdleCollectionOptions;
  heapTotal?: () => number;
  /** Event-loop utilization since `previous` (perf_hooks' signature). */
  utilization?: (previous?: EventLoopUtilization) => EventLoopUtilization;
}

/** Starts looking; returns the function that stops. Does nothing without `gc`. */
export function collectWhenIdle(deps: IdleCollectionDeps): () => void {
  const { gc, log } = deps;
  if (!gc) {
    log.debug("idle memory release off: node runs without --expose-gc");
    return () => {};
  }
  const heapTotal = deps.heapTotal ?? (() => getHeapStatistics().total_heap_size);
  const utilization = deps.utilization ?? ((previous) => performance.eventLoopUtilization(previous));
  const options = deps.options ?? IDLE_COLLECTION_DEFAULTS;
  let floor = heapTotal();
  let since = utilization();
  const timer = setInterval(() => {
    const reading = { utilization: utilization(since).utilization, heapTotal: heapTotal(), floor };
    since = utilization();
    // V8 shrinks the heap on its own too; the margin counts from the smallest heap seen.
    floor = Math.min(floor, reading.heapTotal);
    if (!idleCollectionDue(reading, options)) return;
    const started = performance.now();
    gc({ type: "major", execution: "sync", flavor: "last-resort" });
    floor = heapTotal();
    log.info(
      { heapBefore: reading.heapTotal, heapAfter: floor, ms: Math.round(performance.now() - started) },
      "idle: heap collected",
    );
  }, deps.intervalMs ?? 10_000);
  timer.unref();
  return () => clearInterval(timer);
}
