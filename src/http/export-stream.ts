// The body of an export response (`GET /api/v1/data/export`): ClickHouse's bytes as they come (or
// rows formatted in Node), with the rows sent counted, and the export settled once, however the
// body ends: read to its end, cut off mid-way, or destroyed before its first read.
import { Readable } from "node:stream";
import { csvHeader, exportBody, tsvHeader, type TextFormat } from "../records/export.js";
import type { ExportFormat } from "../records/export.engine.js";
import type { Logger } from "../observability/logger.js";
import { relayCollection } from "../observability/relay-collection.js";
import type { RecordExport } from "../records/read.service.js";

export function exportStream(run: RecordExport, format: ExportFormat, log: Pick<Logger, "warn">): Readable {
  const progress = { sent: 0 };
  let settled: Promise<unknown> | null = null;
  const settle = (sent: number, complete: boolean): Promise<unknown> => {
    if (settled) return settled;
    settled = run.finish(sent);
    if (!complete) log.warn({ sent, total: run.total }, "export stopped before its last row");
    return settled;
  };
  const sentSoFar = () => run.bytes?.rows ?? progress.sent;

  let started = false;
  async function* body() {
    started = true;
    let complete = false;
    try {
      if (run.bytes) {
        // The engine writes CSV and TSV rows only (export.engine.ts); the header is Datahus's.
        if (format === "csv") yield csvHeader(run.dataset.columns);
        if (format === "tsv") yield tsvHeader(run.dataset.columns);
        const relayed = relayCollection();
        for await (const chunk of run.bytes) {
          relayed(chunk.length);
          yield chunk;
        }
      } else {
        yield* exportBody(format as TextFormat, run.dataset.columns, run.batches, progress);
      }
      complete = true;
    } finally {
      // Before the last byte: once a client has the whole body, its charge is booked. A Parquet
      // file is only whole at its end: its rows count then.
      await settle(complete && run.bytes && format === "parquet" ? run.total : sentSoFar(), complete);
    }
  }

  const stream = Readable.from(body(), { objectMode: false });
  // A stream destroyed before its first read (the client gone before the first byte: Fastify
  // destroys the body of a closed response) never runs the generator, nor its `finally`: the
  // export is settled here, and the engine's output given back unread.
  stream.once("close", () => {
    void settle(sentSoFar(), false);
    if (!started) void run.bytes?.[Symbol.asyncIterator]().return?.();
  });
  return stream;
}
