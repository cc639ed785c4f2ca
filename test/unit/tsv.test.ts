// Rows as TabSeparated text (records/tsv.ts, RowEncoder): escaping, NULL, the system columns.
import { describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { RowEncoder } from "../../src/records/records.writer.js";
import { escapeTsv, tsvDateTime } from "../../src/records/tsv.js";

describe("escapeTsv", () => {
  it("escapes what ends or breaks a field and leaves the rest", () => {
    expect(escapeTsv("plain, \"quoted\" 'x' Ωmega 😀")).toBe("plain, \"quoted\" 'x' Ωmega 😀");
    expect(escapeTsv("a\tb\nc\rd\\e")).toBe("a\\tb\\nc\\rd\\\\e");
    expect(escapeTsv("\\N")).toBe("\\\\N");
    expect(escapeTsv("end\\")).toBe("end\\\\");
    expect(escapeTsv("")).toBe("");
    expect(escapeTsv("a\0b")).toBe("a\0b");
  });
});

describe("tsvDateTime", () => {
  it("writes Unix seconds padded to ten digits", () => {
    expect(tsvDateTime(new Date("1970-01-01T00:00:05Z"))).toBe("0000000005");
    expect(tsvDateTime(new Date("2024-06-30T12:34:56.999Z"))).toBe("1719750896");
    expect(tsvDateTime(new Date("2105-12-31T23:59:59Z"))).toBe("4291747199");
    expect(() => tsvDateTime(new Date("1969-12-31T23:59:59Z"))).toThrow(RangeError);
  });
});

describe("RowEncoder", () => {
  const columns: Column[] = [
    { name: "id", type: "INT64", nullable: false },
    { name: "name", type: "STRING", nullable: true },
    { name: "price", type: "DECIMAL", precision: 38, scale: 2, nullable: false },
    { name: "ok", type: "BOOLEAN", nullable: false },
    { name: "at", type: "DATETIME", nullable: true },
    { name: "day", type: "DATE", nullable: false },
  ];
  const now = new Date("2026-01-01T00:00:00Z");
  const encoder = new RowEncoder({ columns, keyColumns: ["id"] }, { version: 7n, runId: "r\t1", now });

  it("names the dataset's columns, then the system columns", () => {
    expect(encoder.columns).toEqual([
      "id",
      "name",
      "price",
      "ok",
      "at",
      "day",
      "_key",
      "_version",
      "_run_id",
      "_ingested_at",
      "_deleted",
    ]);
  });

  it("writes one line per row, values canonical and NULL as \\N", () => {
    const big = "9223372036854775807";
    expect(
      encoder.line({
        id: big,
        name: "a\tb",
        price: "99999999999999999999999999999999999.9",
        ok: true,
        at: null,
        day: "2024-02-29",
      }),
    ).toBe(
      `${big}\ta\\tb\t99999999999999999999999999999999999.90\t1\t\\N\t2024-02-29\t${big}\t7\tr\\t1\t1767225600\t0\n`,
    );
    expect(
      encoder.line({
        id: 5,
        name: "",
        price: "-0.5",
        ok: false,
        at: "2024-01-01T01:00:00+01:00",
        day: "2024-01-01",
      }),
    ).toBe("5\t\t-0.50\t0\t1704067200\t2024-01-01\t5\t7\tr\\t1\t1767225600\t0\n");
  });

  it("refuses a value that does not fit its column", () => {
    expect(() => encoder.line({ id: 2 ** 53, price: "1", ok: true, day: "2024-01-01" })).toThrow(
      /Column "id" \(INT64\)/,
    );
    expect(() => encoder.line({ id: 1, price: "1.234", ok: true, day: "2024-01-01" })).toThrow(
      /Column "price" \(DECIMAL\) has more than 2 digits/,
    );
    expect(() => encoder.line({ id: 1, price: "1", ok: true, day: null })).toThrow(
      /Column "day" cannot be null/,
    );
    expect(() => encoder.line({ id: 1, name: "\uD800", price: "1", ok: true, day: "2024-01-01" })).toThrow(
      /lone UTF-16 surrogate/,
    );
  });

  it("writes tombstones with the key and the types' defaults", () => {
    const tombstones = new RowEncoder(
      { columns, keyColumns: ["id", "day"] },
      { version: 8, runId: "d", now, deleted: true },
    );
    expect(tombstones.line({ id: "3", day: "2024-01-01" })).toBe(
      '3\t\\N\t0\t0\t\\N\t2024-01-01\t["3","2024-01-01"]\t8\td\t1767225600\t1\n',
    );
  });
});
