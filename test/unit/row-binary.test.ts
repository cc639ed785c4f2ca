// Rows as RowBinary (records/row-binary.ts, RowEncoder): the bytes of each type, NULL, the
// system columns, strings long enough to need a multi-byte length.
import { describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { RowEncoder } from "../../src/records/records.writer.js";
import { ByteWriter, epochSeconds } from "../../src/records/row-binary.js";
import { epochDays } from "../../src/records/values.js";

const hex = (b: Buffer) => b.toString("hex");

describe("ByteWriter", () => {
  it("writes a string's UTF-8 length as LEB128, whatever its size", () => {
    for (const text of ["", "a", "é😀", "x".repeat(127), "x".repeat(128), "ü".repeat(70_000)]) {
      const out = new ByteWriter();
      out.string(text);
      const bytes = out.take();
      let length = 0;
      let shift = 0;
      let i = 0;
      for (;;) {
        const b = bytes[i++]!;
        length |= (b & 0x7f) << shift;
        shift += 7;
        if (b < 0x80) break;
      }
      expect(length).toBe(Buffer.byteLength(text));
      expect(bytes.subarray(i).toString("utf8")).toBe(text);
    }
  });

  it("writes Int128 in two's complement, low half first", () => {
    const out = new ByteWriter();
    out.int128(-1n);
    out.int128(2n ** 64n + 5n);
    expect(hex(out.take())).toBe("ff".repeat(16) + "0500000000000000" + "0100000000000000");
  });

  it("counts days and seconds from the epoch, negative before it", () => {
    expect(epochDays("1970-01-02")).toBe(1);
    expect(epochDays("1900-01-01")).toBe(-25567);
    expect(epochSeconds("1969-12-31T23:59:59Z")).toBe(-1);
  });
});

describe("RowEncoder", () => {
  const columns: Column[] = [
    { name: "id", type: "INT64", nullable: false },
    { name: "name", type: "STRING", nullable: true },
    { name: "price", type: "DECIMAL", precision: 38, scale: 2, nullable: false },
    { name: "f", type: "FLOAT64", nullable: false },
    { name: "ok", type: "BOOLEAN", nullable: false },
    { name: "day", type: "DATE", nullable: false },
  ];
  const now = new Date("2026-01-01T00:00:00Z");
  const encoder = new RowEncoder({ columns, keyColumns: ["id"] }, { version: 7n, runId: "r", now });

  it("names the dataset's columns, then the system columns", () => {
    expect(encoder.columns).toEqual([
      "id",
      "name",
      "price",
      "f",
      "ok",
      "day",
      "_key",
      "_version",
      "_run_id",
      "_ingested_at",
      "_deleted",
    ]);
  });

  it("writes each value by its bytes: a float exactly, NULL as its flag", () => {
    const bytes = encoder.row({
      id: "-2",
      name: null,
      price: "-0.5",
      f: -114.6580911,
      ok: true,
      day: "1970-01-03",
    });
    const f = Buffer.alloc(8);
    f.writeDoubleLE(-114.6580911);
    expect(hex(bytes)).toBe(
      [
        "feffffffffffffff", // id
        "01", // name: NULL
        "ceffffffffffffff" + "ffffffffffffffff", // price: -50 as Int128
        hex(f),
        "01", // ok
        "0200", // day 2
        "022d32", // _key "-2"
        "0700000000000000", // _version
        "0172", // _run_id
        "00b95569", // _ingested_at 1767225600
        "00", // _deleted
      ].join(""),
    );
  });

  it("refuses a value that does not fit its column, keeping nothing of the row", () => {
    const out = new ByteWriter();
    expect(() => encoder.encode({ id: 2 ** 53, price: "1", f: 0, ok: true, day: "2024-01-01" }, out)).toThrow(
      /Column "id" \(INT64\)/,
    );
    expect(() => encoder.encode({ id: 1, price: "1.234", f: 0, ok: true, day: "2024-01-01" }, out)).toThrow(
      /Column "price" \(DECIMAL\) has more than 2 digits/,
    );
    expect(() => encoder.encode({ id: 1, price: "1", f: 0, ok: true, day: null }, out)).toThrow(
      /Column "day" cannot be null/,
    );
    expect(out.length).toBe(0);
  });

  it("writes tombstones with the key and the types' defaults", () => {
    const tombstones = new RowEncoder(
      { columns, keyColumns: ["id", "day"] },
      { version: 8, runId: "d", now, deleted: true },
    );
    const key = '["3","2024-01-01"]';
    expect(hex(tombstones.row({ id: "3", day: "2024-01-01" }))).toBe(
      [
        "0300000000000000",
        "01",
        "00".repeat(16),
        "00".repeat(8),
        "00",
        epochDays("2024-01-01").toString(16).padStart(4, "0").match(/../g)!.reverse().join(""),
        key.length.toString(16).padStart(2, "0") + Buffer.from(key).toString("hex"),
        "0800000000000000",
        "0164",
        "00b95569",
        "01",
      ].join(""),
    );
  });
});
