// The export response body settles the export exactly once, with the rows sent, however it ends.
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { exportStream } from "../../src/http/export-stream.js";
import { capRows } from "../../src/records/export.engine.js";
import type { RecordExport } from "../../src/records/read.service.js";

function exported(chunks: string[], rows: number) {
  const settled: number[] = [];
  const warnings: Record<string, unknown>[] = [];
  const returned: boolean[] = [];
  const bytes = (async function* () {
    for (const chunk of chunks) yield Buffer.from(chunk);
  })();
  // What ClickHouse.output returns can be given back before its first chunk is read.
  const output: AsyncIterableIterator<Buffer> = {
    next: () => bytes.next(),
    return: async () => {
      returned.push(true);
      return bytes.return(undefined);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
  const run: RecordExport = {
    dataset: { id: "d", slug: "d", columns: [] },
    total: rows,
    reserved: { records: rows, credits: rows, balance: 0 },
    batches: (async function* () {})(),
    bytes: capRows(output, "ndjson", rows),
    finish: async (sent) => {
      settled.push(sent);
      return null;
    },
  };
  const log = { warn: (data: Record<string, unknown>) => void warnings.push(data) };
  return { stream: exportStream(run, "ndjson", log), settled, warnings, returned };
}

describe("exportStream", () => {
  it("settles once with every row when read to its end", async () => {
    const { stream, settled, warnings } = exported(['{"a":1}\n{"a":2}\n', '{"a":3}\n'], 3);
    let text = "";
    for await (const chunk of stream) text += String(chunk);
    expect(text.split("\n")).toHaveLength(4);
    expect(settled).toEqual([3]);
    expect(warnings).toEqual([]);
  });

  it("settles once with the rows handed on when destroyed mid-way", async () => {
    // Three chunks of 1,000 lines, each larger than the stream's buffer: it stops pulling.
    const chunk = (k: number) =>
      Array.from({ length: 1000 }, (_, i) => `{"a":${String(k * 1000 + i).padStart(12, "0")}}\n`).join("");
    const { stream, settled, warnings } = exported([chunk(0), chunk(1), chunk(2)], 3000);
    await once(stream, "data");
    stream.destroy();
    await once(stream, "close");
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toHaveLength(1);
    expect(settled[0]! % 1000).toBe(0);
    expect(settled[0]).toBeGreaterThanOrEqual(1000);
    expect(settled[0]).toBeLessThan(3000);
    expect(warnings).toEqual([{ sent: settled[0], total: 3000 }]);
  });

  it("settles with nothing sent when destroyed before its first read", async () => {
    const { stream, settled, warnings, returned } = exported(['{"a":1}\n'], 1);
    stream.destroy();
    await once(stream, "close");
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toEqual([0]);
    expect(warnings).toEqual([{ sent: 0, total: 1 }]);
    // The engine's output is given back unread (its query stopped, its connection closed).
    expect(returned).toEqual([true]);
  });
});
