// The stream consumer engine: one loop per started STREAM pipeline. It takes micro-batches from
// the broker adapter (by size or time), runs them through the pipeline's steps, writes the good
// rows to the dataset and the bad ones to the quarantine, and only then acknowledges them. A crash
// anywhere before the acknowledgement makes the broker deliver the batch again; the dataset's
// ReplacingMergeTree keeps one row per key, so a re-delivered message replaces itself.
// While ClickHouse refuses the batch (down, slow, full) the engine retries it with a growing pause
// and takes nothing new: the adapter's buffer fills and the broker holds the rest.
import type { ClickHouse } from "../db/clickhouse.js";
import type { Logger } from "../observability/logger.js";
import { quarantine, type RejectedRow } from "../pipelines/run-tables.js";
import { compilePipeline } from "../pipelines/steps/compile.js";
import { nextRowVersion, writeRecords, type DatasetRef } from "../records/records.writer.js";
import type { MessageBuffer, StreamAdapter, StreamMessage } from "./adapters/adapter.js";

/** Longest raw text kept with a quarantined message. */
const RAW_LIMIT = 10_000;
const RETRY_FIRST_MS = 200;
const RETRY_MAX_MS = 5000;

export interface StreamTarget {
  database: string;
  dataset: DatasetRef;
  steps: unknown;
  runId: string;
  /** See StreamSourceConfig.messageIdField. */
  messageIdField?: string | undefined;
}

export interface BatchOutcome {
  written: number;
  rejected: number;
}

/** What the engine has done since it started; read by the supervisor once a second. */
export interface StreamCounters {
  read: number;
  written: number;
  rejected: number;
  lastMessageAt: Date | null;
  /** ClickHouse refused the last attempt: consumption is paused until a write succeeds. */
  paused: boolean;
  /** Messages taken from the adapter and not yet acknowledged. */
  inFlight: number;
}

export interface PreparedBatch {
  rows: Record<string, unknown>[];
  /** Rejected messages not quarantined yet. */
  bad: RejectedRow[];
  rejected: number;
}

export type Decoded = { ok: true; record: Record<string, unknown> } | { ok: false; reason: string };

/** One message or event on its way through the steps. */
export interface BatchEntry {
  id: string | null;
  origin: string;
  decoded: Decoded;
  /** The text quarantined when the entry is rejected before the steps. */
  raw: () => string;
}

function decode(body: Uint8Array): Decoded {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));
  } catch (error) {
    return { ok: false, reason: `invalid JSON: ${(error as Error).message}` };
  }
  return decodedValue(value);
}

/** A parsed JSON value as a record, or the reason it is not one. */
export function decodedValue(value: unknown): Decoded {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return { ok: true, record: value as Record<string, unknown> };
  }
  const what = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
  return { ok: false, reason: `is ${what}, not a JSON object` };
}

/** Text kept with a quarantined message or event, cut at RAW_LIMIT characters. */
export const clippedRaw = (text: string) => (text.length > RAW_LIMIT ? `${text.slice(0, RAW_LIMIT)}…` : text);

const rawText = (body: Uint8Array) =>
  clippedRaw(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8"));

/**
 * Writes one micro-batch: the rejected messages to the quarantine, then the rows. Either may be
 * written again when the batch is retried or re-delivered: the rows replace themselves by key;
 * a quarantined message with a broker id keeps its origin (`topic#id`) and shows once in
 * rejectedRows (LIMIT 1 BY origin, row number).
 */
export class BatchWriter {
  private sequence = 0;

  constructor(
    private readonly clickhouse: ClickHouse,
    private readonly target: StreamTarget,
  ) {}

  /** Runs the batch through the steps; pure but for numbering, so a retry reuses its result. */
  prepare(messages: readonly StreamMessage[]): Promise<PreparedBatch> {
    return this.prepareEntries(
      messages.map((m) => ({
        id: m.id,
        origin: m.origin,
        decoded: decode(m.body),
        raw: () => rawText(m.body),
      })),
    );
  }

  /**
   * Entries decoded already (the event endpoints parse JSON themselves). A rejected entry with an
   * id is quarantined with origin `origin#id`, which is how a caller finds which ones failed.
   */
  async prepareEntries(entries: readonly BatchEntry[]): Promise<PreparedBatch> {
    const { dataset, steps, runId, messageIdField } = this.target;
    // Compiled per batch: steps that deduplicate remember keys for one batch, not for ever.
    const compiled = compilePipeline(steps, dataset);
    const rows: Record<string, unknown>[] = [];
    const bad: RejectedRow[] = [];
    for (const entry of entries) {
      const rowNumber = entry.id === null ? ++this.sequence : 0;
      const origin = entry.id === null ? entry.origin : `${entry.origin}#${entry.id}`;
      const { decoded } = entry;
      if (!decoded.ok) {
        bad.push({ runId, origin, rowNumber, raw: entry.raw(), reasons: [decoded.reason] });
        continue;
      }
      if (messageIdField && entry.id !== null) decoded.record[messageIdField] = entry.id;
      const pending = compiled.processRecord(rowNumber, decoded.record);
      const result = pending instanceof Promise ? await pending : pending;
      if (result?.ok) rows.push(result.row);
      else if (result) {
        bad.push({ runId, origin, rowNumber, raw: JSON.stringify(result.raw), reasons: result.reasons });
      }
    }
    return { rows, bad, rejected: bad.length };
  }

  async write(prepared: PreparedBatch): Promise<BatchOutcome> {
    const { database, dataset, runId } = this.target;
    if (prepared.bad.length) {
      await quarantine(this.clickhouse, database, dataset.id, prepared.bad);
      prepared.bad = []; // a retry after the rows failed does not quarantine them twice
    }
    if (prepared.rows.length) {
      await writeRecords(this.clickhouse, database, dataset, prepared.rows, {
        version: nextRowVersion(),
        runId,
        represented: true, // the steps' final check leaves every value so
        chunkSize: prepared.rows.length,
      });
    }
    return { written: prepared.rows.length, rejected: prepared.rejected };
  }
}

export interface EngineOptions {
  batchSize: number;
  batchMs: number;
  log: Logger;
  /** After each stored batch (the supervisor counts and tells listeners). */
  onStored?: (outcome: BatchOutcome) => void;
}

export class StreamEngine {
  readonly counters: StreamCounters = {
    read: 0,
    written: 0,
    rejected: 0,
    lastMessageAt: null,
    paused: false,
    inFlight: 0,
  };
  private stopping = false;
  private loop: Promise<void> | null = null;
  private failure: Error | null = null;
  private wakeRetry: (() => void) | null = null;

  constructor(
    private readonly adapter: StreamAdapter,
    private readonly buffer: MessageBuffer,
    private readonly writer: BatchWriter,
    private readonly options: EngineOptions,
  ) {}

  /** Connects and starts consuming; rejects when the broker cannot be reached. */
  async start(): Promise<void> {
    await this.adapter.start(this.buffer);
    this.loop = this.run().catch((error: unknown) => {
      this.failure = error as Error;
    });
  }

  /** Set when the loop ended on its own (the broker connection was lost for good). */
  get failed(): Error | null {
    return this.failure;
  }

  /** Messages not yet stored: waiting at the broker plus taken and unacknowledged. */
  async lag(): Promise<number | null> {
    const waiting = await this.adapter.lag().catch(() => null);
    const held = this.buffer.size + this.counters.inFlight;
    return waiting === null ? (held ? held : null) : waiting + held;
  }

  /**
   * Finishes the batch being written (and acknowledges it), then disconnects: what was taken
   * and not written goes back to the broker.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    this.buffer.close();
    this.wakeRetry?.();
    await this.loop;
    await this.adapter.close();
  }

  private async run(): Promise<void> {
    while (!this.stopping) {
      const batch = await this.buffer.take(this.options.batchSize, this.options.batchMs);
      if (!batch.length || this.stopping) break;
      this.counters.inFlight = batch.length;
      this.counters.read += batch.length;
      this.counters.lastMessageAt = new Date();
      const prepared = await this.writer.prepare(batch);
      const outcome = await this.writeUntilStored(prepared);
      if (!outcome) break; // stopping: the batch goes back to the broker
      await this.adapter.ack(batch);
      this.counters.inFlight = 0;
      this.counters.written += outcome.written;
      this.counters.rejected += outcome.rejected;
      this.options.onStored?.(outcome);
    }
  }

  /** Writes until ClickHouse takes the batch; null when stopped first. */
  private async writeUntilStored(prepared: PreparedBatch): Promise<BatchOutcome | null> {
    let pause = RETRY_FIRST_MS;
    for (;;) {
      try {
        const outcome = await this.writer.write(prepared);
        if (this.counters.paused) this.options.log.info({}, "stream consumption resumed");
        this.counters.paused = false;
        return outcome;
      } catch (error) {
        if (!this.counters.paused) {
          this.options.log.warn({ err: error }, "stream batch not stored; consumption paused until it is");
        }
        this.counters.paused = true;
      }
      if (this.stopping) return null;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, pause);
        this.wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wakeRetry = null;
      if (this.stopping) return null;
      pause = Math.min(RETRY_MAX_MS, pause * 2);
    }
  }
}
