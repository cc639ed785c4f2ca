// The relay's minor collections (src/observability/relay-collection.ts): one per `every` bytes
// sent, none without `gc`.
import { describe, expect, it, vi } from "vitest";
import { RELAY_COLLECTION_BYTES, relayCollection } from "../../src/observability/relay-collection.js";

describe("relayCollection", () => {
  it("collects the young generation once per `every` bytes relayed", () => {
    const gc = vi.fn();
    const relayed = relayCollection(gc, 100);
    for (let i = 0; i < 9; i++) relayed(30); // 270 bytes: past 100 at 120, past 100 again at 240
    expect(gc).toHaveBeenCalledTimes(2);
    expect(gc).toHaveBeenCalledWith({ type: "minor", execution: "sync" });
    relayed(1000); // one chunk past the mark: one collection, the count starts again
    expect(gc).toHaveBeenCalledTimes(3);
    relayed(99);
    expect(gc).toHaveBeenCalledTimes(3);
  });

  it("counts each relay on its own", () => {
    const gc = vi.fn();
    const first = relayCollection(gc, 100);
    const second = relayCollection(gc, 100);
    first(60);
    second(60);
    expect(gc).not.toHaveBeenCalled();
    first(60);
    expect(gc).toHaveBeenCalledTimes(1);
  });

  it("does nothing where node runs without --expose-gc", () => {
    expect(() => relayCollection(undefined)(RELAY_COLLECTION_BYTES * 2)).not.toThrow();
  });
});
