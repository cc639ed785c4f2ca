// Usage events are written to ClickHouse in batches, off the request path: ClickHouse wants few
// large inserts, not one per request, and a buyer's read should not wait for reporting. Events
// are flushed every `intervalMs` or `maxBatch` events, on demand (before a usage report is read
// in this process) and on shutdown. A failed flush is logged and its events kept for the next.
import type { ClickHouse } from "../db/clickhouse.js";
import type { Logger } from "../observability/logger.js";
import { insertUsageRows, usageRow, type UsageEvent, type UsageRow } from "./usage.js";

const MAX_PENDING = 100_000;

export class UsageRecorder {
  private pending: UsageRow[] = [];
  private flushing: Promise<void> | null = null;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly clickhouse: ClickHouse,
    private readonly log: Pick<Logger, "warn">,
    private readonly options: { intervalMs: number; maxBatch: number } = { intervalMs: 1000, maxBatch: 1000 },
    /** Told of every event as it is recorded (/metrics: credits charged). */
    private readonly meter?: { used(operation: string, records: number, credits: bigint | number): void },
  ) {
    this.timer = setInterval(() => void this.flush(), options.intervalMs);
    this.timer.unref();
  }

  /** Validates the event now (a bad one throws to the caller) and queues it. */
  record(event: UsageEvent): void {
    this.pending.push(usageRow({ ...event, at: event.at ?? new Date() }));
    this.meter?.used(event.operation, event.records, event.credits);
    if (this.pending.length >= this.options.maxBatch) void this.flush();
  }

  /** Writes everything recorded so far; concurrent callers share one flush. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.flushing = insertUsageRows(this.clickhouse, batch)
      .catch((err: unknown) => {
        // Keep the events for the next attempt, within a bound: reporting must not exhaust memory.
        this.pending = [...batch, ...this.pending].slice(-MAX_PENDING);
        this.log.warn({ err, events: batch.length }, "could not write usage events; will retry");
      })
      .finally(() => {
        this.flushing = null;
      });
    await this.flushing;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
  }
}
