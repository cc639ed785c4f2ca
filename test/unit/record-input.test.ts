// Records and keys sent to correct a dataset, checked against its columns before any write.
import { describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { AppError } from "../../src/errors.js";
import { checkKeys, checkRecords, keyFromText } from "../../src/ingest/record-input.js";

const columns: Column[] = [
  { name: "shop", type: "STRING", nullable: false },
  { name: "open", type: "BOOLEAN", nullable: false },
  { name: "day", type: "DATE", nullable: false },
  { name: "total", type: "DECIMAL", precision: 10, scale: 2, nullable: false },
  { name: "seen_at", type: "DATETIME", nullable: true },
];
const schema = { columns, keyColumns: ["shop", "open", "day"] };

function refusal(run: () => unknown): AppError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected a refusal");
}

describe("checkRecords", () => {
  it("returns the values as readers return them, nullable columns defaulting to null", () => {
    expect(
      checkRecords(schema, [
        { shop: "a", open: 1, day: "2026-01-02", total: 3, seen_at: "2026-01-02T03:04:05.9+01:00" },
      ]),
    ).toEqual([{ shop: "a", open: true, day: "2026-01-02", total: "3.00", seen_at: "2026-01-02T02:04:05Z" }]);
    expect(
      checkRecords(schema, [{ shop: "a", open: false, day: "2026-01-02", total: "0" }])[0]!.seen_at,
    ).toBeNull();
  });

  it("names the record and the column of the first problem", () => {
    const cases: [unknown, string][] = [
      [
        { shop: "a", open: true, day: "2026-02-30", total: "1" },
        "records[0].day: DATE expects a date as YYYY-MM-DD",
      ],
      [
        { shop: "a", open: "yes", day: "2026-01-02", total: "1" },
        "records[0].open: BOOLEAN expects true or false",
      ],
      [{ shop: null, open: true, day: "2026-01-02", total: "1" }, "records[0].shop: is required (STRING)"],
      [{ shop: "a", open: true, day: "2026-01-02", total: "1", _key: "x" }, "records[0]._key: not a column"],
      [[1], "records[0]: must be an object"],
    ];
    for (const [record, message] of cases) {
      const error = refusal(() => checkRecords(schema, [record]));
      expect(error.code).toBe("BAD_USER_INPUT");
      expect(error.message).toBe(message);
    }
  });

  it("refuses one key twice in a batch, however it is spelt", () => {
    const error = refusal(() =>
      checkRecords(schema, [
        { shop: "a", open: true, day: "2026-01-02", total: "1" },
        { shop: "a", open: 1, day: "2026-01-02", total: "2" },
      ]),
    );
    expect(error.message).toBe("records[1]: repeats the key of records[0]");
    expect(error.fields).toMatchObject({ argument: "records", index: 1 });
  });
});

describe("keys", () => {
  it("takes exactly the key columns", () => {
    expect(checkKeys(schema, [{ shop: "a", open: false, day: "2026-01-02" }])).toEqual([
      { shop: "a", open: false, day: "2026-01-02" },
    ]);
    expect(
      refusal(() => checkKeys(schema, [{ shop: "a", open: false, day: "2026-01-02", total: "1" }])).message,
    ).toBe("keys[0].total: the key columns are shop, open, day");
    expect(refusal(() => checkKeys(schema, [{ shop: "a", open: false }])).fields).toMatchObject({
      column: "day",
    });
  });

  it("reads a canonical key text back into its key", () => {
    expect(keyFromText(schema, '["a/b","true","2026-01-02"]')).toEqual({
      shop: "a/b",
      open: true,
      day: "2026-01-02",
    });
    expect(keyFromText({ columns, keyColumns: ["day"] }, "2026-01-02")).toEqual({ day: "2026-01-02" });
    for (const text of ["a", '["a","true"]', "[1,2,3", '{"shop":"a"}']) {
      expect(refusal(() => keyFromText(schema, text)).message).toMatch(/^Invalid key/);
    }
  });
});
