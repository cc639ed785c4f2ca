import { describe, expect, it } from "vitest";
import { columnStatsQuery, toColumnStats } from "../../src/catalog/column-stats.js";
import type { Column } from "../../src/catalog/columns.js";

const columns: Column[] = [
  { name: "id", type: "INT64", nullable: false },
  { name: "note", type: "STRING", nullable: true },
];

describe("column statistics", () => {
  it("are one SELECT over the live rows, every column by its quoted name", () => {
    const text = columnStatsQuery("db", "ds_1", columns).text;
    expect(text).toContain("FROM `db`.`ds_1` FINAL WHERE _deleted = 0");
    expect(text).toContain("countIf(isNull(`note`)) AS `c1_nulls`");
    expect(text).toContain("uniq(`id`) AS `c0_distinct`");
  });

  it("have no min or max for an empty table or a column of nulls only", () => {
    expect(toColumnStats(columns, { total: "0", c0_min: "0", c0_max: "0", c0_distinct: "0" })).toEqual([
      { name: "id", nulls: 0, min: null, max: null, distinct: 0 },
      { name: "note", nulls: 0, min: null, max: null, distinct: 0 },
    ]);
    const allNull = { total: "2", c0_min: "1", c0_max: "2", c0_distinct: "2", c1_nulls: "2", c1_min: null };
    expect(toColumnStats(columns, allNull)[1]).toEqual({
      name: "note",
      nulls: 2,
      min: null,
      max: null,
      distinct: 0,
    });
  });
});
