import { describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { AppError } from "../../src/errors.js";
import {
  compilePipeline,
  type PipelineTarget,
  type SourceRecord,
  type StepResult,
} from "../../src/pipelines/steps/compile.js";

const col = (name: string, type: Column["type"], extra: Partial<Column> = {}): Column => ({
  name,
  type,
  nullable: true,
  ...extra,
});

const target = (columns: Column[], keyColumns: string[] = [columns[0]!.name]): PipelineTarget => ({
  columns: columns.map((c) => (keyColumns.includes(c.name) ? { ...c, nullable: false } : c)),
  keyColumns,
});

async function run(steps: unknown, t: PipelineTarget, records: Record<string, unknown>[]) {
  const pipeline = compilePipeline(steps, t);
  const input: SourceRecord[] = records.map((record, i) => ({ rowNumber: i + 1, record }));
  const results: StepResult[] = [];
  for await (const r of pipeline.process(input)) results.push(r);
  return { pipeline, results, ok: results.filter((r) => r.ok), rejected: results.filter((r) => !r.ok) };
}

function compileError(steps: unknown, t: PipelineTarget): AppError {
  try {
    compilePipeline(steps, t);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    return error as AppError;
  }
  throw new Error("expected a compile error");
}

describe("steps, one kind at a time", () => {
  it("select keeps only the named fields", async () => {
    const { results } = await run(
      [{ op: "select", fields: ["id", "name"] }],
      target([col("id", "STRING"), col("name", "STRING")]),
      [{ id: "1", name: "a", other: 1 }],
    );
    expect(results).toEqual([{ ok: true, rowNumber: 1, row: { id: "1", name: "a" } }]);
  });

  it("rename with from/to and with a map", async () => {
    const t = target([col("id", "STRING"), col("name", "STRING"), col("city", "STRING")]);
    const { ok } = await run(
      [
        { op: "rename", from: "ID", to: "id" },
        { op: "rename", map: { Name: "name", Town: "city" } },
      ],
      t,
      [{ ID: "1", Name: "a", Town: "Oslo" }],
    );
    expect(ok[0]).toMatchObject({ row: { id: "1", name: "a", city: "Oslo" } });
  });

  it("cast reads European numbers, date layouts and booleans into the column representation", async () => {
    const t = target([
      col("id", "INT64"),
      col("price", "DECIMAL", { precision: 12, scale: 2 }),
      col("qty", "INT32"),
      col("rate", "FLOAT64"),
      col("day", "DATE"),
      col("at", "DATETIME"),
      col("active", "BOOLEAN"),
    ]);
    const { ok, rejected } = await run(
      [
        { op: "cast", field: "id", to: "INT64" },
        { op: "cast", field: "price", to: "DECIMAL", decimalSeparator: "," },
        { op: "cast", field: "qty", to: "INT32", decimalSeparator: "," },
        { op: "cast", field: "rate", to: "FLOAT64", decimalSeparator: "," },
        { op: "cast", field: "day", to: "DATE", format: "DD/MM/YYYY" },
        { op: "cast", field: "at", to: "DATETIME", format: "YYYY-MM-DD HH:mm:ss" },
        { op: "cast", field: "active", to: "BOOLEAN" },
      ],
      t,
      [
        {
          id: "9007199254740993",
          price: "1 234,5",
          qty: "1.000",
          rate: "0,25",
          day: "31/12/2024",
          at: "2024-05-01 13:04:05",
          active: "yes",
        },
        { id: "2", price: "", qty: "x", rate: "1", day: "31/02/2024", at: "nope", active: "maybe" },
      ],
    );
    expect(ok).toEqual([
      {
        ok: true,
        rowNumber: 1,
        row: {
          id: "9007199254740993",
          price: "1234.50",
          qty: 1000,
          rate: 0.25,
          day: "2024-12-31",
          at: "2024-05-01T13:04:05Z",
          active: true,
        },
      },
    ]);
    // Every failing cast is reported, not just the first; empty text became null (nullable).
    expect(rejected[0]!.ok === false && rejected[0]!.reasons).toHaveLength(4);
  });

  it("trim, default", async () => {
    const t = target([col("id", "STRING"), col("name", "STRING"), col("country", "STRING")]);
    const { ok } = await run([{ op: "trim" }, { op: "default", field: "country", value: "NO" }], t, [
      { id: " 1 ", name: "  a  ", country: "" },
      { id: "2", name: "b", country: "SE" },
    ]);
    expect(ok.map((r) => r.ok && r.row)).toEqual([
      { id: "1", name: "a", country: "NO" },
      { id: "2", name: "b", country: "SE" },
    ]);
  });

  it("trim of named fields only", async () => {
    const t = target([col("id", "STRING"), col("name", "STRING")]);
    const { ok } = await run([{ op: "trim", fields: ["id"] }], t, [{ id: " 1 ", name: " a " }]);
    expect(ok[0]).toMatchObject({ row: { id: "1", name: " a " } });
  });

  it("filter skips rows and derive computes fields with JSONata", async () => {
    const t = target([col("id", "STRING"), col("label", "STRING")]);
    const { results, pipeline } = await run(
      [
        { op: "filter", expression: "n > 1" },
        { op: "derive", field: "label", expression: "$uppercase(id) & '-' & $string(n)" },
      ],
      t,
      [
        { id: "a", n: 1 },
        { id: "b", n: 2 },
      ],
    );
    expect(results).toEqual([{ ok: true, rowNumber: 2, row: { id: "b", label: "B-2" } }]);
    expect(pipeline.stats()).toEqual({ read: 2, ok: 1, rejected: 0, filtered: 1 });
  });

  it("dedupe keeps the first occurrence and rejects later ones", async () => {
    const t = target([col("id", "STRING"), col("v", "INT32")]);
    const { results } = await run([{ op: "dedupe", keys: ["id"] }], t, [
      { id: "a", v: 1 },
      { id: "b", v: 2 },
      { id: "a", v: 3 },
    ]);
    expect(results.map((r) => r.ok)).toEqual([true, true, false]);
    expect(results[2]).toMatchObject({
      ok: false,
      rowNumber: 3,
      reasons: ["duplicate key a"],
      raw: { id: "a", v: 3 },
    });
  });

  it("a rejected row does not claim its key", async () => {
    const t = target([col("id", "STRING"), col("v", "INT32")]);
    const { results } = await run([{ op: "dedupe", keys: ["id"] }], t, [
      { id: "a", v: "bad" },
      { id: "a", v: 2 },
    ]);
    expect(results.map((r) => r.ok)).toEqual([false, true]);
  });

  it("validate checks required, type, enum, pattern, range and length", async () => {
    const t = target([col("id", "STRING"), col("code", "STRING"), col("n", "INT32")]);
    const steps = [
      {
        op: "validate",
        field: "code",
        required: true,
        enum: ["AB", "CD"],
        pattern: "^[A-Z]+$",
        minLength: 2,
        maxLength: 2,
      },
      { op: "validate", field: "n", type: "INT32", min: 0, max: 10 },
    ];
    const { results } = await run(steps, t, [
      { id: "1", code: "AB", n: 5 },
      { id: "2", code: "abc", n: 11 },
      { id: "3", n: "x" },
    ]);
    expect(results[0]).toMatchObject({ ok: true });
    expect(results[1]).toMatchObject({
      ok: false,
      reasons: [
        'field "code" must be one of "AB", "CD"',
        'field "code" does not match the pattern ^[A-Z]+$',
        'field "code" is longer than 2',
        'field "n" is above the maximum 10',
      ],
    });
    const third = results[2]!;
    expect(third.ok).toBe(false);
    if (!third.ok) {
      expect(third.reasons[0]).toBe('field "code" is required');
      expect(third.reasons.some((r) => r.startsWith('field "n" is not a INT32'))).toBe(true);
      expect(third.reasons.some((r) => r.startsWith('column "n" (INT32)'))).toBe(true);
    }
  });
});

describe("a chain like a real source", () => {
  const t = target(
    [
      col("order_id", "STRING"),
      col("customer", "STRING", { nullable: false }),
      col("qty", "INT32", { nullable: false }),
      col("price", "DECIMAL", { precision: 12, scale: 2, nullable: false }),
      col("total", "DECIMAL", { precision: 14, scale: 2 }),
      col("ordered_on", "DATE", { nullable: false }),
      col("status", "STRING", { nullable: false }),
    ],
    ["order_id"],
  );
  const steps = [
    {
      op: "rename",
      map: {
        "Order No": "order_id",
        Kunde: "customer",
        Antall: "qty",
        Pris: "price",
        Dato: "ordered_on",
        Status: "status",
      },
    },
    { op: "trim" },
    { op: "cast", field: "qty", to: "INT32", decimalSeparator: "," },
    { op: "cast", field: "price", to: "DECIMAL", decimalSeparator: "," },
    { op: "cast", field: "ordered_on", to: "DATE", format: "DD/MM/YYYY" },
    { op: "derive", field: "total", expression: "$string($round(qty * $number(price), 2))" },
    { op: "filter", expression: "status != 'cancelled'" },
    { op: "validate", field: "status", enum: ["open", "shipped"] },
    { op: "validate", field: "customer", required: true },
    { op: "dedupe", keys: ["order_id"] },
  ];
  const source = [
    {
      "Order No": " A1 ",
      Kunde: "Ola ",
      Antall: "2",
      Pris: "1 234,50",
      Dato: "01/02/2024",
      Status: "open",
      Note: "x",
    },
    { "Order No": "A2", Kunde: "Kari", Antall: "1", Pris: "10,00", Dato: "02/02/2024", Status: "cancelled" },
    { "Order No": "A3", Kunde: "", Antall: "zwei", Pris: "1,005", Dato: "30/02/2024", Status: "lost" },
    { "Order No": "A1", Kunde: "Ola", Antall: "3", Pris: "1,00", Dato: "03/02/2024", Status: "shipped" },
    {
      "Order No": "A4",
      Kunde: "Per",
      Antall: "3",
      Pris: "0,10",
      Dato: "04/02/2024",
      Status: "shipped",
      Coupon: "Z",
    },
  ];

  it("loads good rows, skips filtered ones and rejects bad ones with every reason", async () => {
    const { results, pipeline } = await run(steps, t, source);
    expect(results.map((r) => [r.rowNumber, r.ok])).toEqual([
      [1, true],
      [3, false],
      [4, false],
      [5, true],
    ]);
    expect(results[0]).toEqual({
      ok: true,
      rowNumber: 1,
      row: {
        order_id: "A1",
        customer: "Ola",
        qty: 2,
        price: "1234.50",
        total: "2469.00",
        ordered_on: "2024-02-01",
        status: "open",
      },
    });
    expect(results[3]).toMatchObject({ ok: true, row: { order_id: "A4", total: "0.30", price: "0.10" } });
    const bad = results[1]!;
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.raw).toEqual(source[2]);
      expect(bad.reasons).toHaveLength(6);
      expect(bad.reasons.join("\n")).toMatch(/field "qty": cannot cast "zwei" to INT32/);
      expect(bad.reasons.join("\n")).toMatch(
        /field "ordered_on": cannot cast "30\/02\/2024" to DATE: is not a valid date/,
      );
      expect(bad.reasons.join("\n")).toMatch(/field "status" must be one of/);
      expect(bad.reasons.join("\n")).toMatch(/field "customer" is required/);
      expect(bad.reasons.join("\n")).toMatch(/column "price" \(DECIMAL\) has more than 2 digits/);
      expect(bad.reasons.join("\n")).toMatch(/field "total": the expression failed/);
    }
    expect(results[2]).toMatchObject({ ok: false, reasons: ["duplicate key A1"] });
    expect(pipeline.stats()).toEqual({ read: 5, ok: 2, rejected: 2, filtered: 1 });
    expect(pipeline.newFields()).toEqual(["Coupon", "Note"]);
  });

  it("accepts an async source", async () => {
    const pipeline = compilePipeline(steps, t);
    async function* records() {
      for (const [i, record] of source.entries()) yield { rowNumber: i + 1, record };
    }
    let ok = 0;
    for await (const r of pipeline.process(records())) if (r.ok) ok++;
    expect(ok).toBe(2);
  });
});

describe("the final check against the dataset's columns", () => {
  it("rejects missing keys and wrong types, and outputs only the dataset's columns", async () => {
    const t = target([col("id", "INT32"), col("name", "STRING", { nullable: false }), col("x", "BOOLEAN")]);
    const { results } = await run([], t, [
      { name: 5, x: "yes", extra: 1 },
      { id: 3, name: "c" },
    ]);
    expect(results[0]).toMatchObject({
      ok: false,
      reasons: [
        'key column "id" is missing',
        'column "name" (STRING) expects a string',
        'column "x" (BOOLEAN) expects true or false',
      ],
    });
    expect(results[1]).toEqual({ ok: true, rowNumber: 2, row: { id: 3, name: "c", x: null } });
  });

  it("treats a field named __proto__ as data", async () => {
    const t = target([col("id", "STRING")]);
    const record = JSON.parse('{"id": "1", "__proto__": {"polluted": true}}') as Record<string, unknown>;
    const { results } = await run([{ op: "rename", from: "__proto__", to: "p" }], t, [record]);
    expect(results[0]).toMatchObject({ ok: true, row: { id: "1" } });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("sees no inherited members as fields", async () => {
    const t = target([
      col("id", "STRING"),
      col("constructor", "STRING", { nullable: true }),
      col("toString", "STRING", { nullable: true }),
    ]);
    const { results } = await run(
      [
        { op: "select", fields: ["id", "constructor", "toString"] },
        { op: "default", field: "toString", value: "x" },
      ],
      t,
      [{ id: "1" }],
    );
    expect(results[0]).toEqual({
      ok: true,
      rowNumber: 1,
      row: { id: "1", constructor: null, toString: "x" },
    });
  });
});

describe("hostile expressions", () => {
  const t = target([col("id", "STRING"), col("out", "STRING")]);
  const derive = (expression: string) => [{ op: "derive", field: "out", expression }];

  async function timed(expression: string) {
    const started = Date.now();
    const { results } = await run(derive(expression), t, [{ id: "1" }]);
    return { result: results[0]!, ms: Date.now() - started };
  }

  it("cannot reach JavaScript through prototypes", async () => {
    for (const e of [
      '$lookup($lookup({}, "constructor"), "constructor")("return process")()',
      "{}.constructor.constructor('return 1')()",
      '$string($lookup(id, "constructor"))',
    ]) {
      const { result } = await timed(e);
      if (result.ok) expect(result.row.out === null || result.row.out === "").toBe(true);
      else expect(result.reasons[0]).toMatch(/field "out": the expression failed/);
    }
  });

  it("has no $eval", async () => {
    const { result } = await timed('$eval("1 + 1")');
    expect(result).toMatchObject({ ok: false, reasons: [expect.stringMatching(/\$eval is not allowed/)] });
  });

  it("stops infinite recursion and huge loops within the time limit", { timeout: 10_000 }, async () => {
    for (const e of [
      "($f := function($n) { $f($n + 1) }; $f(0))",
      "($f := function($n) { $n + $f($n + 1) }; $string($f(0)))",
      "$string($count($map([1..9999999], function($x) { $x * 2 })))",
      "$string($reduce([1..9999999], function($a, $b) { $a + $b }))",
    ]) {
      const { result, ms } = await timed(e);
      expect(result.ok).toBe(false);
      expect(ms).toBeLessThan(3_000);
    }
  });

  it("refuses regular expressions, whose backtracking the timeout cannot interrupt", () => {
    const error = compileError(derive("$string($match(id, /(a+)+$/))"), t);
    expect(error.message).toMatch(/regular expressions are not allowed/);
  });
});

describe("compile errors", () => {
  it("list every problem at once", () => {
    const t = target([
      col("id", "STRING"),
      col("amount", "DECIMAL", { precision: 10, scale: 2, nullable: false }),
    ]);
    const error = compileError(
      [
        { op: "select", fields: ["id", "price"] },
        { op: "cast", field: "amount", to: "DECIMAL" },
        { op: "cast", field: "price", to: "DATE", format: "DD/MM" },
        { op: "derive", field: "x", expression: "price *" },
        { op: "validate", field: "id", pattern: "([a-z]", min: 5, max: 1 },
        { op: "rename", from: "id" },
      ],
      t,
    );
    const problems = error.fields.problems as string[];
    expect(problems).toEqual([
      'steps[1] (cast): field "amount" is not there (dropped by a select or renamed)',
      'steps[2] (cast): format "DD/MM" needs a year (YYYY), month (MM or M) and day (DD or D)',
      expect.stringMatching(/^steps\[3\] \(derive\): expression "price \*": .+ at position \d+$/),
      expect.stringMatching(/^steps\[4\] \(validate\): invalid pattern/),
      "steps[4] (validate): min is greater than max",
      'steps[5] (rename): give either "from" and "to", or "map"',
      'column "amount" is required but no field of that name is left after the steps',
    ]);
  });

  it("reports shape errors such as unknown step kinds and cast types", () => {
    const error = compileError(
      [{ op: "cast", field: "a", to: "MONEY" }, { op: "explode" }, { op: "select", fields: [], extra: 1 }],
      target([col("id", "STRING")]),
    );
    const problems = error.fields.problems as string[];
    expect(problems.length).toBeGreaterThanOrEqual(3);
    expect(problems.join("\n")).toMatch(/steps\[0\]\["to"\]/);
    expect(problems.join("\n")).toMatch(/steps\[1\]/);
    expect(problems.join("\n")).toMatch(/steps\[2\]/);
  });

  it("refuses a non-array", () => {
    compileError({ op: "select" }, target([col("id", "STRING")]));
  });
});

describe("new fields", () => {
  it("reports source fields that neither the steps nor the columns use", async () => {
    const t = target([col("id", "STRING"), col("total", "FLOAT64")]);
    const { pipeline } = await run(
      [
        { op: "rename", from: "ID", to: "id" },
        { op: "derive", field: "total", expression: "qty * unit.price" },
      ],
      t,
      [
        { ID: "1", qty: 2, unit: { price: 3 } },
        { ID: "2", qty: 1, unit: { price: 3 }, colour: "red", Size: "L" },
      ],
    );
    expect(pipeline.newFields()).toEqual(["Size", "colour"]);
  });
});
