// Collects the young generation as bytes are relayed. A relay (ClickHouse's output to an export's
// client, src/http/export-stream.ts; a CSV file to ClickHouse in the engine load, engine-load.ts)
// gets a new buffer from each read and drops it once it is sent, but makes little other garbage:
// V8 scavenges seldom, the dead buffers' memory (outside the heap) piles up, and V8 answers with
// full collections of the whole heap. Measured on 18.16 (bench/README.md, "Export, session 10" and
// "The engine load, session 10"): the API relaying six exports spent 496 ms collecting, 68 ms
// with a minor collection every RELAY_COLLECTION_BYTES; a worker loading 3,000,000 rows peaked at
// 241-246 MiB, 196-209 MiB with it. A smaller young generation for the whole process
// (--max-semi-space-size=2) cut the export's collections too, but took a fifth off the requests
// per second the API answers under load (bench/load.bench.ts). Needs `node --expose-gc`, as the
// processes are deployed (idle-collection.ts); without it, nothing happens.
import { exposedGc, type ExposedGc } from "./idle-collection.js";

/** Bytes relayed between two minor collections. */
export const RELAY_COLLECTION_BYTES = 8 * 1024 * 1024;

/** A counter of the bytes one relay sent; it collects the young generation every `every` bytes. */
export function relayCollection(
  gc: ExposedGc | undefined = exposedGc(),
  every = RELAY_COLLECTION_BYTES,
): (bytes: number) => void {
  if (!gc) return () => {};
  let since = 0;
  return (bytes) => {
    since += bytes;
    if (since < every) return;
    since = 0;
    gc({ type: "minor", execution: "sync" });
  };
}
