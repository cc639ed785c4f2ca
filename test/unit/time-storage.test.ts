// How DATE and DATETIME columns are stored per engine, and what each storage accepts, compares
// and reads back (catalog/columns.ts TimeStorage, records/values.ts). The engines themselves are
// exercised in test/integration/wide-dates.test.ts and calendar.clickhouse.test.ts.
import { describe, expect, it } from "vitest";
import { clickHouseType, timeStorageFor, withTimeStorage, type Column } from "../../src/catalog/columns.js";
import {
  fromTransport,
  literal,
  toRepresentation,
  ValueError,
  type ValueType,
} from "../../src/records/values.js";

const version = (text: string) => {
  const [major, minor] = text.split(".").map(Number);
  return { major: major!, minor: minor! };
};

describe("time storage", () => {
  it.each([
    ["18.16", "epoch"],
    ["21.9", "epoch"],
    ["22.7", "epoch"],
    ["22.8", "wide"],
    ["24.8", "wide"],
    ["26.7", "wide"],
  ])("on %s is %s", (engine, storage) => {
    expect(timeStorageFor(version(engine))).toBe(storage);
  });

  it("is given to new DATE and DATETIME columns only, and decides their ClickHouse type", () => {
    const columns: Column[] = [
      { name: "a", type: "STRING", nullable: false },
      { name: "d", type: "DATE", nullable: false },
      { name: "t", type: "DATETIME", nullable: true },
    ];
    const type = (c: Column) => clickHouseType(c).text;
    expect(columns.map(type)).toEqual(["String", "Date", "Nullable(DateTime)"]);
    expect(withTimeStorage(columns, "wide").map(type)).toEqual([
      "String",
      "Date32",
      "Nullable(DateTime64(3, 'UTC'))",
    ]);
    expect(withTimeStorage(columns, "epoch").map(type)).toEqual(["String", "Int32", "Nullable(Int64)"]);
    expect(withTimeStorage(columns, "epoch")[0]).not.toHaveProperty("storage");
  });
});

describe("values by storage", () => {
  const date = (storage?: "wide" | "epoch"): ValueType => ({ type: "DATE", ...(storage ? { storage } : {}) });
  const time = (storage?: "wide" | "epoch"): ValueType => ({
    type: "DATETIME",
    ...(storage ? { storage } : {}),
  });
  const refusal = (type: ValueType, value: unknown) => {
    try {
      toRepresentation(type, value);
    } catch (error) {
      expect(error).toBeInstanceOf(ValueError);
      return (error as Error).message;
    }
    return null;
  };

  it("hold 1900 to 2299 when wide or epoch, 1970 to 2105 before, and say so when refusing", () => {
    for (const storage of ["wide", "epoch"] as const) {
      expect(toRepresentation(date(storage), "1900-01-01")).toBe("1900-01-01");
      expect(toRepresentation(date(storage), "2299-12-31")).toBe("2299-12-31");
      expect(toRepresentation(time(storage), "1969-12-31T23:59:59.9Z")).toBe("1969-12-31T23:59:59Z");
      expect(refusal(date(storage), "1899-12-31")).toBe("expects a date from 1900-01-01 to 2299-12-31");
      expect(refusal(time(storage), "2300-01-01T00:00:00Z")).toBe(
        "expects a date-time from 1900-01-01 to 2299-12-31 (UTC)",
      );
    }
    expect(refusal(date(), "1969-12-31")).toBe("expects a date from 1970-01-01 to 2105-12-31");
    expect(refusal(time(), "2106-01-01T00:00:00Z")).toBe(
      "expects a date-time from 1970-01-01 to 2105-12-31 (UTC)",
    );
  });

  it("compare as literals of the stored type", () => {
    expect(literal(date("wide"), "1969-12-31").text).toBe("toDate32('1969-12-31')");
    expect(literal(date("epoch"), "1969-12-31").text).toBe("(-1)");
    expect(literal(date(), "1970-01-02").text).toBe("toDate('1970-01-02')");
    expect(literal(time("wide"), "1900-01-01T00:00:01Z").text).toBe(
      "toDateTime64('1900-01-01 00:00:01', 3, 'UTC')",
    );
    expect(literal(time("epoch"), "1969-12-31T23:59:59Z").text).toBe("(-1000)");
  });

  it("read back from days and milliseconds since 1970", () => {
    for (const storage of ["wide", "epoch"] as const) {
      expect(fromTransport(date(storage), -25567)).toBe("1900-01-01");
      expect(fromTransport(date(storage), 120529)).toBe("2299-12-31");
      expect(fromTransport(time(storage), "-1000")).toBe("1969-12-31T23:59:59Z");
      expect(fromTransport(time(storage), null)).toBeNull();
    }
  });
});
