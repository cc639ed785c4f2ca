// PUSH sources: records sent to Datahus (ingestRecords, POST /api/v1/ingest/{dataset}) rather
// than fetched. Each push is stored as a batch for its pipeline run; the run reads it through this
// connector like any other source, so pushed records go through the same steps and quarantine.
import { badInput } from "../../errors.js";
import type { Connector, ConnectorContext, SourceReader, SourceRow } from "./types.js";

export const PUSH_CONTENT_TYPES = ["application/json", "application/x-ndjson"] as const;
export type PushContentType = (typeof PUSH_CONTENT_TYPES)[number];

export interface PushBatch {
  /** application/json: an array of records; application/x-ndjson: one record a line. */
  contentType: PushContentType;
  body: Uint8Array;
}

/** Where pushed batches are kept (PostgreSQL: ingest/push.service.ts). */
export interface PushBatchStore {
  batch(runId: string): Promise<PushBatch | null>;
}

/** Longest raw text kept with a quarantined element. */
const RAW_LIMIT = 10_000;

const clip = (text: string) => (text.length > RAW_LIMIT ? `${text.slice(0, RAW_LIMIT)}…` : text);

function row(rowNumber: number, value: unknown, raw: string): SourceRow {
  if (typeof value === "object" && value !== null && !Array.isArray(value)) {
    return { ok: true, rowNumber, record: value as Record<string, unknown>, bytes: Buffer.byteLength(raw) };
  }
  const what = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
  return { ok: false, rowNumber, raw: clip(raw), reasons: [`is ${what}, not a JSON object`] };
}

/** The batch's records, in order, numbered from 1 (NDJSON: by line, blank lines skipped). */
export function* pushedRows(batch: PushBatch): Generator<SourceRow> {
  const text = Buffer.from(batch.body).toString("utf8");
  if (batch.contentType === "application/json") {
    // Checked when the batch was accepted; a batch that no longer parses fails the run.
    const items = JSON.parse(text) as unknown;
    if (!Array.isArray(items)) throw new Error("A pushed JSON batch must be an array");
    for (const [i, item] of items.entries()) yield row(i + 1, item, JSON.stringify(item) ?? "");
    return;
  }
  const lines = text.split("\n");
  for (const [i, line] of lines.entries()) {
    const raw = line.endsWith("\r") ? line.slice(0, -1) : line;
    if (raw.trim() === "") continue;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      yield {
        ok: false,
        rowNumber: i + 1,
        raw: clip(raw),
        reasons: [`invalid JSON: ${(error as Error).message}`],
      };
      continue;
    }
    yield row(i + 1, value, raw);
  }
}

export function pushConnector(store: PushBatchStore): Connector {
  return {
    // Nothing is read from the settings; what a publisher keeps there (notes) stays as given.
    validate: () => [],

    read(context: ConnectorContext): SourceReader {
      let size: number | null = null;
      const load = async () => {
        const batch = await store.batch(context.runId);
        // The batch goes when its run has finished for a day; a run without one cannot be replayed.
        if (!batch) throw new Error(`No pushed batch is stored for run ${context.runId}`);
        size = batch.body.byteLength;
        return batch;
      };
      return {
        async *[Symbol.asyncIterator]() {
          const batch = await load();
          context.log.info({ runId: context.runId, bytes: size }, "reading pushed batch");
          for (const item of pushedRows(batch)) {
            if (context.signal.aborted) throw context.signal.reason;
            yield item;
          }
        },
        checkpoint: () => null,
        totalBytes: async () => size ?? (await load()).body.byteLength,
      };
    },

    sample() {
      return Promise.reject(
        badInput(
          "PUSH sources have nothing to read: send records with ingestRecords or POST /api/v1/ingest/{dataset}",
        ),
      );
    },
  };
}
