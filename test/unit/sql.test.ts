import { describe, it, expect } from "vitest";
import { Identifier, Sql, ident, inList, join, quoteString, sql, tuple } from "../../src/db/sql.js";

const text = (q: Sql) => q.text;

describe("sql template: strings", () => {
  it.each([
    ["plain", "abc", "'abc'"],
    ["empty", "", "''"],
    ["single quote", "O'Brien", "'O\\'Brien'"],
    ["quote-closing injection", "x' OR 1=1 --", "'x\\' OR 1=1 --'"],
    ["backslash", "a\\b", "'a\\\\b'"],
    ["trailing backslash", "a\\", "'a\\\\'"],
    ["backslash then quote", "\\'", "'\\\\\\''"],
    ["escaped-quote attempt", "\\' OR 1=1 --", "'\\\\\\' OR 1=1 --'"],
    ["double backslash then quote", "\\\\'", "'\\\\\\\\\\''"],
    ["NUL", "a\0b", "'a\\0b'"],
    ["newline and CR", "a\nb\r\n", "'a\\nb\\r\\n'"],
    ["tab, backspace, form feed", "\t\b\f", "'\\t\\b\\f'"],
    ["other control characters", "\x01\x1f\x7f", "'\\x01\\x1F\\x7F'"],
    ["comment markers", "-- /* */ #", "'-- /* */ #'"],
    ["statement separator", "1; DROP TABLE t", "'1; DROP TABLE t'"],
    ["backticks and double quotes", '`t` "c"', "'`t` \"c\"'"],
    ["emoji", "😀👍🏽", "'😀👍🏽'"],
    ["CJK", "数据仓库", "'数据仓库'"],
    ["combining marks and RTL", "é שלום", "'é שלום'"],
  ])("%s", (_name, value, expected) => {
    expect(sql`${value}`.text).toBe(expected);
  });

  it("keeps everything outside the quotes static", () => {
    const hostile = "'); DROP TABLE users; --";
    expect(sql`SELECT * FROM t WHERE name = ${hostile} AND x = 1`.text).toBe(
      "SELECT * FROM t WHERE name = '\\'); DROP TABLE users; --' AND x = 1",
    );
  });

  it("never leaves an unescaped quote inside the literal", () => {
    const inputs = ["'", "\\'", "\\\\'", "''", "\\", "a'b\\'c\\\\'d"];
    for (const input of inputs) {
      const body = quoteString(input).slice(1, -1);
      // Every quote must be preceded by an odd number of backslashes.
      for (const match of body.matchAll(/(\\*)'/g)) {
        expect(match[1]!.length % 2).toBe(1);
      }
    }
  });

  it("rejects lone surrogates, which cannot reach the server unchanged", () => {
    expect(() => sql`${"a\uD800b"}`).toThrow(RangeError);
    expect(() => sql`${"\uDC00"}`).toThrow(RangeError);
  });
});

describe("sql template: other scalars", () => {
  it("renders integers and floats", () => {
    expect(sql`${0} ${42} ${-7} ${0.1} ${-2.5} ${1e21} ${1e-7}`.text).toBe("0 42 (-7) 0.1 (-2.5) 1e+21 1e-7");
  });

  it("turns -0 into 0", () => {
    expect(sql`${-0}`.text).toBe("0");
  });

  it("parenthesises negatives so that `-` never meets `-`", () => {
    expect(sql`SELECT 1-${-1}`.text).toBe("SELECT 1-(-1)");
    expect(sql`SELECT 1-${-1n}`.text).toBe("SELECT 1-(-1)");
  });

  it.each([NaN, Infinity, -Infinity])("rejects %s", (value) => {
    expect(() => sql`${value}`).toThrow(RangeError);
  });

  it("rejects subnormal floats, which 18.16 cannot parse", () => {
    expect(() => sql`${5e-324}`).toThrow(RangeError);
    expect(sql`${2.2250738585072014e-308}`.text).toBe("2.2250738585072014e-308");
  });

  it("renders bigints inside the 64-bit range", () => {
    expect(sql`${18446744073709551615n} ${-9223372036854775808n}`.text).toBe(
      "18446744073709551615 (-9223372036854775808)",
    );
    expect(() => sql`${18446744073709551616n}`).toThrow(RangeError);
    expect(() => sql`${-9223372036854775809n}`).toThrow(RangeError);
  });

  it("renders booleans as UInt8 and null/undefined as NULL", () => {
    expect(sql`${true} ${false} ${null} ${undefined}`.text).toBe("1 0 NULL NULL");
  });

  it("renders dates as UTC DateTime, dropping milliseconds", () => {
    expect(sql`${new Date("2024-02-29T23:59:58.999Z")}`.text).toBe(
      "toDateTime('2024-02-29 23:59:58', 'UTC')",
    );
    expect(sql`${new Date(0)}`.text).toBe("toDateTime('1970-01-01 00:00:00', 'UTC')");
    expect(sql`${new Date("2105-12-31T23:59:59Z")}`.text).toBe("toDateTime('2105-12-31 23:59:59', 'UTC')");
  });

  it("rejects invalid and out-of-range dates", () => {
    expect(() => sql`${new Date("nope")}`).toThrow(RangeError);
    expect(() => sql`${new Date("1969-12-31T23:59:59Z")}`).toThrow(RangeError);
    // 18.16 silently wraps 2106 to 1970.
    expect(() => sql`${new Date("2106-01-01T00:00:00Z")}`).toThrow(RangeError);
  });
});

describe("sql template: arrays, lists and fragments", () => {
  it("renders arrays as array literals, nested and mixed", () => {
    expect(sql`${["a'", 1, null, [true, -2]]}`.text).toBe("['a\\'', 1, NULL, [1, (-2)]]");
    expect(sql`${[]}`.text).toBe("[]");
  });

  it("renders IN lists with inList and tuple", () => {
    expect(sql`x IN ${inList(["a", "b'c"])}`.text).toBe("x IN ('a', 'b\\'c')");
    expect(sql`x IN ${tuple([1])}`.text).toBe("x IN (1)");
  });

  it("refuses an empty IN list", () => {
    expect(() => inList([])).toThrow(RangeError);
  });

  it("inlines nested fragments and identifiers as they are", () => {
    const where = sql`${ident("status")} = ${"ok"}`;
    expect(sql`SELECT * FROM ${ident("db", "t")} WHERE ${where}`.text).toBe(
      "SELECT * FROM `db`.`t` WHERE `status` = 'ok'",
    );
  });

  it("has an empty fragment", () => {
    expect(sql`SELECT 1${sql.empty}`.text).toBe("SELECT 1");
    expect(sql.empty.text).toBe("");
  });

  it("joins fragments", () => {
    const parts = [sql`a = ${1}`, sql`b = ${"x"}`];
    expect(join(parts).text).toBe("a = 1, b = 'x'");
    expect(join(parts, " AND ").text).toBe("a = 1 AND b = 'x'");
    expect(join(parts, sql` OR `).text).toBe("a = 1 OR b = 'x'");
    expect(join([]).text).toBe("");
  });

  it("refuses string separators that would smuggle SQL", () => {
    const parts = [sql`a`, sql`b`];
    expect(() => join(parts, "; DROP TABLE t; ")).toThrow(TypeError);
    expect(() => join(parts, " -- ")).toThrow(TypeError);
    expect(() => join(["a" as unknown as Sql])).toThrow(TypeError);
  });

  it("is immutable and prints as its text", () => {
    const q = sql`SELECT ${1}`;
    expect(Object.isFrozen(q)).toBe(true);
    expect(String(q)).toBe("SELECT 1");
    expect(`${q}`).toBe("SELECT 1");
    expect(() => {
      (q as unknown as { text: string }).text = "DROP TABLE t";
    }).toThrow(TypeError);
    expect(q.text).toBe("SELECT 1");
  });
});

describe("sql template: what it refuses", () => {
  const bad: Array<[string, unknown]> = [
    ["plain object", { a: 1 }],
    ["symbol", Symbol("s")],
    ["function", () => 1],
    ["Map", new Map()],
    ["null-prototype object", Object.create(null)],
    ["array holding an object", [1, { a: 1 }]],
    ["look-alike of Sql", { text: "1; DROP TABLE t" }],
    ["object with Sql prototype", Object.create(Sql.prototype)],
  ];
  it.each(bad)("%s", (_name, value) => {
    expect(() => sql`${value as string}`).toThrow(TypeError);
  });

  it("cannot be called as a plain function to pass raw text", () => {
    const forged = ["DROP TABLE t"] as unknown as TemplateStringsArray;
    expect(() => sql(forged)).toThrow(TypeError);
    expect(() => new Sql(Symbol("datahus.sql") as never, ["DROP TABLE t"])).toThrow(TypeError);
    expect(() => new Identifier(Symbol("datahus.sql") as never, ["t"])).toThrow(TypeError);
  });
});

describe("ident", () => {
  it("back-quotes valid names", () => {
    expect(ident("usage_events").text).toBe("`usage_events`");
    expect(ident("_t1").text).toBe("`_t1`");
    expect(ident("datahus", "usage_events").text).toBe("`datahus`.`usage_events`");
  });

  it.each([
    "",
    "1abc",
    "a-b",
    "a b",
    "a.b",
    "a`b",
    "`t`",
    "t`; DROP TABLE x; --",
    "t; DROP TABLE x",
    "t--",
    "t/*",
    "таблица",
    "表",
    "t\0",
    "t\n",
    "a'b",
    'a"b',
  ])("rejects %j", (name) => {
    expect(() => ident(name)).toThrow(TypeError);
    expect(() => ident("db", name)).toThrow(TypeError);
    expect(() => ident(name, "t")).toThrow(TypeError);
  });

  it("rejects non-strings", () => {
    expect(() => ident(1 as unknown as string)).toThrow(TypeError);
  });

  it("is immutable", () => {
    expect(Object.isFrozen(ident("t"))).toBe(true);
  });
});

describe("text helper", () => {
  it("matches .text", () => {
    expect(text(sql`SELECT ${"a"}`)).toBe("SELECT 'a'");
  });
});

describe("parameterized rendering (engines with query parameters)", () => {
  it("sends each string value as a {pN:String} parameter and keeps other values literal", () => {
    const q = sql`SELECT ${ident("c")} FROM t WHERE s = ${"it's"} AND n = ${-5} AND d = ${new Date(0)}`;
    expect(q.parameterized()).toEqual({
      text: "SELECT `c` FROM t WHERE s = {p0:String} AND n = (-5) AND d = toDateTime('1970-01-01 00:00:00', 'UTC')",
      params: { p0: "it's" },
    });
  });

  it("numbers parameters across nested fragments, join and inList in order", () => {
    const inner = sql`a = ${"x"}`;
    const q = sql`SELECT 1 WHERE ${join([inner, sql`b = ${"y"}`], " AND ")} AND c IN ${inList(["z", 1, null])}`;
    expect(q.parameterized()).toEqual({
      text: "SELECT 1 WHERE a = {p0:String} AND b = {p1:String} AND c IN ({p2:String}, 1, NULL)",
      params: { p0: "x", p1: "y", p2: "z" },
    });
    expect(q.text).toBe("SELECT 1 WHERE a = 'x' AND b = 'y' AND c IN ('z', 1, NULL)");
  });

  it("keeps hostile strings out of the statement text entirely", () => {
    const hostile = "'; DROP TABLE t; --\\' {p1:String} \0\n";
    const { text: statement, params } = sql`SELECT ${hostile}, ${[hostile]}`.parameterized();
    expect(statement).toBe("SELECT {p0:String}, [{p1:String}]");
    expect(params).toEqual({ p0: hostile, p1: hostile });
  });

  it("refuses lone surrogates in both renderings", () => {
    expect(() => sql`SELECT ${"\ud800"}`).toThrow(RangeError);
  });
});
