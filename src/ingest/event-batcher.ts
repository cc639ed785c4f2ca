// Group commit for the event endpoints: events from concurrent requests to one pipeline are
// gathered for a moment (or until a batch is full), run through the pipeline's steps together
// (the stream engine's BatchWriter) and written as one insert. Each request waits for the write
// of the batch it joined, so a 202 means stored (or quarantined); a failed write fails every
// request in it, and the client sends them again (the same Idempotency-Key keeps the same ids).
import type { BatchEntry, BatchOutcome, BatchWriter } from "../streams/stream.engine.js";

export interface BatcherOptions {
  /** The longest an event waits for its batch to fill. */
  batchMs: number;
  /** Events written together at most (a bigger request is one batch of its own). */
  maxBatch: number;
  /** After each stored batch, with the entries read. */
  onStored: (outcome: BatchOutcome, read: number) => void;
}

/** The quarantine's reasons by entry origin (`origin#id`) for the rejected entries of a batch. */
export type Rejections = ReadonlyMap<string, string[]>;

interface Waiting {
  entries: readonly BatchEntry[];
  resolve: (rejected: Rejections) => void;
  reject: (error: unknown) => void;
}

export class EventBatcher {
  private waiting: Waiting[] = [];
  private size = 0;
  private timer: NodeJS.Timeout | null = null;
  /** Batches are written one after another: while ClickHouse is slow, requests wait. */
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly writer: BatchWriter,
    private readonly options: BatcherOptions,
  ) {}

  add(entries: readonly BatchEntry[]): Promise<Rejections> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ entries, resolve, reject });
      this.size += entries.length;
      if (this.size >= this.options.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.options.batchMs);
    });
  }

  /** Writes what waits now; resolves when every batch taken so far is written. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.waiting;
    this.waiting = [];
    this.size = 0;
    if (batch.length) this.writing = this.writing.then(() => this.write(batch));
    return this.writing;
  }

  private async write(batch: Waiting[]): Promise<void> {
    const entries = batch.flatMap((w) => w.entries);
    try {
      const prepared = await this.writer.prepareEntries(entries);
      const rejected = new Map(prepared.bad.map((b) => [b.origin, b.reasons]));
      const outcome = await this.writer.write(prepared);
      this.options.onStored(outcome, entries.length);
      for (const w of batch) w.resolve(rejected);
    } catch (error) {
      for (const w of batch) w.reject(error);
    }
  }
}
