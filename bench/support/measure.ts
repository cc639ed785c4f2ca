// What every benchmark here measures with: interleaved timed reads, percentiles, and tables.
import type { GraphQLResponse } from "../../test/support/stack.js";

export interface Figures {
  label: string;
  path: string;
  count: number;
  p50: number;
  p95: number;
  mean: number;
}

export function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? NaN;
}

export function figures(label: string, path: string, samples: number[]): Figures {
  const sorted = [...samples].sort((a, b) => a - b);
  const mean = samples.reduce((sum, ms) => sum + ms, 0) / samples.length;
  return {
    label,
    path,
    count: samples.length,
    p50: quantile(sorted, 0.5),
    p95: quantile(sorted, 0.95),
    mean,
  };
}

export interface Read {
  label: string;
  path: string;
  run: () => Promise<unknown>;
}

/**
 * Warm-up, then `iterations` rounds in which every read runs once, one after another, each timed
 * on its own, starting from a different read each round. Interleaving spreads JIT warm-up, cache
 * state and machine noise evenly over the reads, where timing them one block after the other
 * would favour whichever ran last.
 */
export async function measure<K extends string>(
  reads: Record<K, Read>,
  { warmup, iterations }: { warmup: number; iterations: number },
): Promise<Record<K, Figures>> {
  const entries = Object.entries(reads) as [K, Read][];
  for (let i = 0; i < warmup; i++) for (const [, read] of entries) await read.run();
  const samples = entries.map((): number[] => []);
  for (let i = 0; i < iterations; i++) {
    for (let k = 0; k < entries.length; k++) {
      const r = (i + k) % entries.length;
      const start = performance.now();
      await entries[r]![1].run();
      samples[r]!.push(performance.now() - start);
    }
  }
  return Object.fromEntries(
    entries.map(([key, read], r) => [key, figures(read.label, read.path, samples[r]!)]),
  ) as Record<K, Figures>;
}

export const ms = (value: number) => value.toFixed(2);

/** A plain-text table: the first two columns left-aligned, the rest (numbers) right-aligned. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Fails loudly on a GraphQL error: a benchmark of error responses would measure nothing. */
export function ok<T>(res: GraphQLResponse<T>): T {
  if (res.status !== 200 || res.errors || !res.data) {
    throw new Error(`GraphQL request failed: ${res.status} ${JSON.stringify(res.errors)}`);
  }
  return res.data;
}

/**
 * `clients` loops issuing requests back to back until `ms` pass or `maxRequests` are sent (both
 * bounds, so a load loop always ends), each request's latency pushed to `samples`. Returns the
 * seconds it took.
 */
export async function concurrentSlice(
  request: () => Promise<unknown>,
  samples: number[],
  { clients, ms: duration, maxRequests }: { clients: number; ms: number; maxRequests: number },
): Promise<number> {
  let budget = maxRequests;
  const start = performance.now();
  const deadline = start + duration;
  const client = async () => {
    while (performance.now() < deadline && budget-- > 0) {
      const t = performance.now();
      await request();
      samples.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: clients }, client));
  return (performance.now() - start) / 1000;
}
