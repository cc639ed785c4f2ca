// Record filters and sort keys compile to exactly the SQL we expect, values only ever as literals of
// their column's type; bad input is BAD_USER_INPUT naming the filter. The last block runs hostile
// filters on the real ClickHouse to show they match as data.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, quoteString, sql } from "../../src/db/sql.js";
import { AppError } from "../../src/errors.js";
import type { Column } from "../../src/catalog/columns.js";
import { createDatasetTable } from "../../src/catalog/dataset-table.js";
import { encodeCursor } from "../../src/pagination.js";
import { compileFilter, FILTER_LIMITS, type RecordFilter } from "../../src/records/filter.js";
import {
  decodeSortCursor,
  encodeSortCursor,
  keysetPredicate,
  orderByClause,
  recordSortTerms,
  type RecordOrder,
} from "../../src/records/order.js";
import { RecordsReader } from "../../src/records/records.reader.js";
import { writeRecords, type DatasetRef } from "../../src/records/records.writer.js";
import { baseConfig, uniqueName } from "../support/databases.js";

const columns: Column[] = [
  { name: "name", type: "STRING", nullable: false },
  { name: "note", type: "STRING", nullable: true },
  { name: "qty", type: "INT32", nullable: false },
  { name: "big", type: "INT64", nullable: false },
  { name: "score", type: "FLOAT64", nullable: false },
  { name: "price", type: "DECIMAL", precision: 18, scale: 2, nullable: false },
  { name: "tiny", type: "DECIMAL", precision: 3, scale: 3, nullable: false },
  { name: "active", type: "BOOLEAN", nullable: false },
  { name: "day", type: "DATE", nullable: false },
  { name: "ts", type: "DATETIME", nullable: true },
];

const compile = (filter: RecordFilter | null) => compileFilter({ columns }, filter).text;

function thrown(fn: () => unknown): AppError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    return error as AppError;
  }
  throw new Error("expected an error");
}

const HOSTILE = [
  "'; DROP TABLE x; --",
  "O'Reilly \\ \"; DROP TABLE",
  "\\'",
  "\\",
  "'",
  "a\0b",
  "line\nbreak\r\t",
  "`name`",
  "{x:String}",
  "/* */ -- #",
  "😀 数据 שלום é",
  "%_[]^$.*",
  "",
];

describe("compileFilter: operators", () => {
  it.each<[string, RecordFilter | null, string]>([
    ["no filter", null, "1"],
    ["empty node", {}, "1"],
    ["STRING eq", { column: "name", eq: "abc" }, "(`name` = 'abc')"],
    ["nullable ne is false on NULL", { column: "note", ne: "x" }, "(ifNull(`note` != 'x', 0))"],
    ["eq null", { column: "note", eq: null }, "(isNull(`note`))"],
    ["ne null", { column: "note", ne: null }, "(isNotNull(`note`))"],
    ["isNull true", { column: "note", isNull: true }, "(isNull(`note`))"],
    ["isNull false", { column: "ts", isNull: false }, "(isNotNull(`ts`))"],
    ["INT32 gt from a string", { column: "qty", gt: "5" }, "(`qty` > 5)"],
    ["INT32 lte negative", { column: "qty", lte: -7 }, "(`qty` <= (-7))"],
    [
      "INT64 gte minimum",
      { column: "big", gte: "-9223372036854775808" },
      "(`big` >= (-9223372036854775808))",
    ],
    ["INT64 from a safe number", { column: "big", lt: 42 }, "(`big` < 42)"],
    [
      "FLOAT64 by its bits",
      { column: "score", lt: 1.5 },
      "(`score` < reinterpretAsFloat64(unhex('000000000000F83F')))",
    ],
    [
      "DECIMAL at the column's scale",
      { column: "price", lte: "12.5" },
      "(`price` <= CAST('12.50' AS Decimal(18, 2)))",
    ],
    ["DECIMAL below one", { column: "tiny", eq: "-0.5" }, "(`tiny` = CAST('-0.500' AS Decimal(3, 3)))"],
    ["BOOLEAN", { column: "active", eq: true }, "(`active` = 1)"],
    ["DATE", { column: "day", eq: "2024-02-29" }, "(`day` = toDate('2024-02-29'))"],
    [
      "DATETIME with an offset, in UTC",
      { column: "ts", gte: "2024-01-01T02:00:00+02:00" },
      "(ifNull(`ts` >= toDateTime('2024-01-01 00:00:00', 'UTC'), 0))",
    ],
    [
      "DATETIME without a zone is UTC",
      { column: "ts", lt: "2024-01-01 10:30" },
      "(ifNull(`ts` < toDateTime('2024-01-01 10:30:00', 'UTC'), 0))",
    ],
    ["in", { column: "qty", in: [1, "2", 3] }, "(`qty` IN (1, 2, 3))"],
    ["in on a nullable column", { column: "note", in: ["a", "b"] }, "(ifNull(`note` IN ('a', 'b'), 0))"],
    ["contains, wildcards literal", { column: "name", contains: "50%_" }, "(position(`name`, '50%_') > 0)"],
    ["startsWith", { column: "note", startsWith: "ab" }, "(ifNull(startsWith(`note`, 'ab'), 0))"],
    [
      "and / or",
      {
        and: [
          { column: "qty", gt: 1 },
          {
            or: [
              { column: "name", eq: "a" },
              { column: "note", isNull: true },
            ],
          },
        ],
      },
      "((`qty` > 1) AND ((`name` = 'a') OR (isNull(`note`))))",
    ],
    ["not", { not: { column: "qty", gt: 1 } }, "(NOT (`qty` > 1))"],
    [
      "several combinators in one node are ANDed",
      { and: [{ column: "qty", eq: 1 }], not: { column: "qty", eq: 2 } },
      "(((`qty` = 1)) AND (NOT (`qty` = 2)))",
    ],
    ["empty and holds", { and: [] }, "1"],
    ["empty or does not", { or: [] }, "0"],
    ["null fields are absent", { column: "qty", eq: 1, gt: null, in: null }, "(`qty` = 1)"],
  ])("%s", (_label, filter, expected) => {
    expect(compile(filter)).toBe(expected);
  });
});

describe("compileFilter: hostile values stay literals", () => {
  it.each(HOSTILE.map((h) => [JSON.stringify(h), h]))("%s", (_label, value) => {
    expect(compile({ column: "name", eq: value })).toBe(`(\`name\` = ${quoteString(value)})`);
    expect(compile({ column: "name", contains: value })).toBe(
      `(position(\`name\`, ${quoteString(value)}) > 0)`,
    );
    expect(compile({ column: "note", in: [value, "x"] })).toBe(
      `(ifNull(\`note\` IN (${quoteString(value)}, 'x'), 0))`,
    );
  });

  it("renders the classic injection as one escaped literal", () => {
    expect(compile({ column: "name", eq: "'; DROP TABLE x; --" })).toBe("(`name` = '\\'; DROP TABLE x; --')");
    expect(compile({ column: "name", eq: "a\0b\\" })).toBe("(`name` = 'a\\0b\\\\')");
  });

  it("never lets a column name through unchecked", () => {
    const error = thrown(() => compile({ column: "name` = 1 OR `x", eq: "a" }));
    expect(error.message).toMatch(/unknown column/);
  });
});

describe("compileFilter: validation", () => {
  const deep = (levels: number): RecordFilter =>
    levels === 1 ? { column: "qty", eq: 1 } : { not: deep(levels - 1) };

  it.each<[string, unknown, RegExp, string]>([
    ["unknown column", { column: "nope", eq: 1 }, /unknown column "nope"/, "filter"],
    ["INT32 from text", { column: "qty", eq: "abc" }, /"qty" \(INT32\) expects a whole number/, "filter.eq"],
    ["INT32 out of range", { column: "qty", gt: 2 ** 31 }, /expects a whole number/, "filter.gt"],
    ["INT64 fraction", { column: "big", eq: 1.5 }, /Int64 range/, "filter.eq"],
    ["INT64 unsafe number", { column: "big", eq: 2 ** 60 }, /as a string beyond/, "filter.eq"],
    ["INT64 overflow", { column: "big", eq: "9223372036854775808" }, /Int64 range/, "filter.eq"],
    ["FLOAT64 NaN", { column: "score", eq: "NaN" }, /finite number/, "filter.eq"],
    [
      "DECIMAL too precise",
      { column: "price", eq: "1.234" },
      /more than 2 digits after the point/,
      "filter.eq",
    ],
    ["DECIMAL too large", { column: "tiny", eq: "1" }, /does not fit Decimal\(3, 3\)/, "filter.eq"],
    ["DECIMAL text", { column: "price", eq: "1e5" }, /decimal number as a string/, "filter.eq"],
    ["DATE not a day", { column: "day", eq: "2023-02-29" }, /YYYY-MM-DD/, "filter.eq"],
    ["DATE out of range", { column: "day", lt: "2200-01-01" }, /from 1970-01-01 to 2105-12-31/, "filter.lt"],
    ["DATETIME fraction", { column: "ts", lt: "2024-01-01T00:00:00.5Z" }, /whole seconds/, "filter.lt"],
    ["DATETIME garbage", { column: "ts", eq: "yesterday" }, /ISO 8601/, "filter.eq"],
    ["STRING from a number", { column: "name", eq: 5 }, /expects a string/, "filter.eq"],
    ["lone surrogate", { column: "name", eq: "\uD800" }, /lone UTF-16 surrogate/, "filter.eq"],
    ["BOOLEAN from text", { column: "active", eq: "true" }, /true or false/, "filter.eq"],
    ["gt null", { column: "qty", gt: null, lt: null, lte: undefined }, /needs one operator/, "filter"],
    ["empty in", { column: "qty", in: [] }, /at least one value/, "filter.in"],
    ["null in in", { column: "qty", in: [1, null] }, /use isNull/, "filter.in[1]"],
    ["too many in values", { column: "qty", in: Array(1001).fill(1) }, /at most 1000 values/, "filter.in"],
    ["two operators", { column: "qty", gt: 1, lt: 5 }, /one operator, found gt, lt/, "filter"],
    ["no operator", { column: "qty" }, /needs one operator/, "filter"],
    ["operator without column", { eq: 1 }, /needs a column/, "filter"],
    ["contains on a number", { column: "qty", contains: "1" }, /STRING columns only/, "filter.contains"],
    ["unknown field", { column: "qty", like: "x" }, /unknown field "like"/, "filter"],
    ["condition and combinator", { column: "qty", eq: 1, and: [] }, /either a condition/, "filter"],
    ["not an object", { and: [5] }, /must be an object/, "filter.and[0]"],
    ["and not a list", { and: { column: "qty", eq: 1 } }, /must be a list/, "filter.and"],
    [
      "too deep",
      deep(FILTER_LIMITS.maxDepth + 1),
      /deeper than 10 levels/,
      "filter" + ".not".repeat(FILTER_LIMITS.maxDepth),
    ],
    [
      "too many conditions",
      { and: Array.from({ length: 101 }, () => ({ column: "qty", eq: 1 })) },
      /more than 100 conditions/,
      "filter.and[100]",
    ],
    [
      "too many nodes",
      { or: Array.from({ length: 250 }, () => ({ and: [] })) },
      /more than 200 nodes/,
      "filter.or[199]",
    ],
  ])("%s", (_label, filter, message, path) => {
    const error = thrown(() => compileFilter({ columns }, filter as RecordFilter));
    expect(error.code).toBe("BAD_USER_INPUT");
    expect(error.message).toMatch(message);
    expect(error.fields).toEqual({ argument: "filter", path });
  });

  it("accepts the limits themselves", () => {
    expect(() => compile(deep(FILTER_LIMITS.maxDepth))).not.toThrow();
    expect(() =>
      compile({ and: Array.from({ length: 100 }, () => ({ column: "qty", eq: 1 })) }),
    ).not.toThrow();
  });
});

describe("sort keys and cursors", () => {
  const order: RecordOrder = [
    { column: "note", direction: "ASC" },
    { column: "score", direction: "DESC" },
  ];
  const terms = recordSortTerms(columns, order);

  it("sorts NULLs last in both directions and ends with _key", () => {
    expect(orderByClause(terms, false).text).toBe("isNull(`note`) ASC, `note` ASC, `score` DESC, `_key` ASC");
    expect(orderByClause(terms, true).text).toBe(
      "isNull(`note`) DESC, `note` DESC, `score` ASC, `_key` DESC",
    );
    const desc = recordSortTerms(columns, [{ column: "ts", direction: "DESC" }]);
    expect(orderByClause(desc, false).text).toBe("isNull(`ts`) ASC, `ts` DESC, `_key` ASC");
  });

  it("builds the lexicographic condition from a cursor", () => {
    const key = decodeSortCursor(terms, encodeSortCursor(terms, ["a'b", 1.5, "k"]), "after");
    const score = "reinterpretAsFloat64(unhex('000000000000F83F'))";
    expect(keysetPredicate(terms, key, false).text).toBe(
      "(isNull(`note`) > 0 OR (isNull(`note`) = 0 AND (assumeNotNull(`note`) > 'a\\'b' OR " +
        `(assumeNotNull(\`note\`) = 'a\\'b' AND (\`score\` < ${score} OR (\`score\` = ${score} AND \`_key\` > 'k'))))))`,
    );
    // Backwards from a NULL: rows with a value come before the NULLs; among NULLs the next term decides.
    const nullKey = decodeSortCursor(terms, encodeSortCursor(terms, [null, 1.5, "k"]), "before");
    expect(keysetPredicate(terms, nullKey, true).text).toBe(
      `(isNull(\`note\`) < 1 OR (isNull(\`note\`) = 1 AND (\`score\` > ${score} OR (\`score\` = ${score} AND \`_key\` < 'k'))))`,
    );
  });

  it("round-trips booleans, decimals and dates", () => {
    const mixed = recordSortTerms(columns, [
      { column: "active", direction: "ASC" },
      { column: "price", direction: "DESC" },
      { column: "ts", direction: "ASC" },
    ]);
    const key = decodeSortCursor(
      mixed,
      encodeSortCursor(mixed, [true, "3.10", "2024-01-01T00:00:00Z", "k"]),
      "after",
    );
    expect(key.map((k) => k?.text ?? null)).toEqual([
      "1",
      "CAST('3.10' AS Decimal(18, 2))",
      "toDateTime('2024-01-01 00:00:00', 'UTC')",
      "'k'",
    ]);
  });

  it("refuses cursors of another order, another shape or with values of the wrong type", () => {
    const cursor = encodeSortCursor(terms, ["a", 1.5, "k"]);
    const invalid = (t: typeof terms, c: string) => {
      const error = thrown(() => decodeSortCursor(t, c, "after"));
      expect(error.code).toBe("BAD_USER_INPUT");
      expect(error.message).toBe("Invalid cursor");
      expect(error.fields).toEqual({ argument: "after" });
    };
    invalid(recordSortTerms(columns, [order[0]!, { column: "score", direction: "ASC" }]), cursor);
    invalid(recordSortTerms(columns, []), cursor);
    const [, fp] = JSON.parse(Buffer.from(cursor, "base64url").toString()) as [number, string];
    invalid(terms, encodeCursor([fp, 0, "a", "1.5", "k"]));
    invalid(terms, encodeCursor([fp, 1, "a", 1.5, "k"]));
    invalid(terms, encodeCursor([fp, 0, null, 1.5, "k"]));
    invalid(terms, encodeCursor([fp, 0, "a", 1.5, null]));
    invalid(terms, "%%%");
  });

  it("validates orderBy", () => {
    const bad = (orderBy: unknown, message: RegExp) => {
      const error = thrown(() => recordSortTerms(columns, orderBy as RecordOrder));
      expect(error.message).toMatch(message);
      expect(error.fields).toEqual({ argument: "orderBy" });
    };
    bad([{ column: "nope", direction: "ASC" }], /unknown column "nope"/);
    bad([{ column: "qty", direction: "asc" }], /ASC or DESC/);
    bad(
      [
        { column: "qty", direction: "ASC" },
        { column: "qty", direction: "DESC" },
      ],
      /appears twice/,
    );
    bad(
      ["qty", "big", "score", "day"].map((column) => ({ column, direction: "ASC" })),
      /at most 3 columns/,
    );
  });
});

describe("hostile filters on the real ClickHouse", () => {
  const database = uniqueName("t");
  const dataset: DatasetRef = {
    id: "hostile",
    tableName: "ds_hostile",
    keyColumns: ["name"],
    columns: [
      { name: "name", type: "STRING", nullable: false },
      { name: "note", type: "STRING", nullable: true },
    ],
  };
  let ch: ClickHouse;
  let reader: RecordsReader;

  beforeAll(async () => {
    ch = createClickHouse(baseConfig(), { database: "default" });
    await ch.command(sql`CREATE DATABASE ${ident(database)}`);
    await createDatasetTable(ch, database, dataset.tableName, dataset.columns);
    const rows = HOSTILE.map((name, i) => ({ name, note: i % 2 ? null : name }));
    await writeRecords(ch, database, dataset, rows, { version: 1, runId: "hostile" });
    reader = new RecordsReader(ch, database, { maxLimit: 100 });
  });

  afterAll(async () => {
    await ch?.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
    await ch?.close();
  });

  it.each(HOSTILE.map((h) => [JSON.stringify(h), h]))("matches %s as data", async (_label, value) => {
    const page = await reader.page(dataset, { first: 100, filter: { column: "name", eq: value } });
    expect(page.items.map((r) => r.values.name)).toEqual([value]);
    expect(await reader.count(dataset, { column: "name", contains: value })).toBe(
      HOSTILE.filter((h) => Buffer.from(h).includes(Buffer.from(value))).length,
    );
    expect(await reader.count(dataset, { column: "name", startsWith: value })).toBe(
      HOSTILE.filter((h) => h.startsWith(value)).length,
    );
    expect(await reader.byKey(dataset, value)).toMatchObject({ key: value });
  });

  it("still has its table", async () => {
    expect(await reader.count(dataset)).toBe(HOSTILE.length);
  });
});
