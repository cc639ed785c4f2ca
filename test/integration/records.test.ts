// The records read engine on the real ClickHouse (18.16 here): a 10,000-row dataset with every
// column type, rows overwritten and deleted, paged in both directions under every order and
// checked against a model kept in JS; filters, counts, single records and aggregates likewise.
import { pageFlag } from "../../src/pagination.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClickHouse, type ClickHouse } from "../../src/db/clickhouse.js";
import { ident, sql } from "../../src/db/sql.js";
import { AppError } from "../../src/errors.js";
import type { Column } from "../../src/catalog/columns.js";
import { createDatasetTable } from "../../src/catalog/dataset-table.js";
import { encodeCursor } from "../../src/pagination.js";
import type { RecordFilter } from "../../src/records/filter.js";
import type { RecordOrder } from "../../src/records/order.js";
import { RecordsReader, type RecordRow } from "../../src/records/records.reader.js";
import { writeRecords, type DatasetRef } from "../../src/records/records.writer.js";
import { baseConfig, uniqueName } from "../support/databases.js";

type Row = Record<string, string | number | boolean | null>;

const HOSTILE = "O'Reilly \\ \"; DROP TABLE";
const PAGE = 250;

const columns: Column[] = [
  { name: "id", type: "INT64", nullable: false },
  { name: "name", type: "STRING", nullable: false },
  { name: "note", type: "STRING", nullable: true },
  { name: "category", type: "STRING", nullable: false },
  { name: "qty", type: "INT32", nullable: false },
  { name: "qty_opt", type: "INT32", nullable: true },
  { name: "big", type: "INT64", nullable: true },
  { name: "score", type: "FLOAT64", nullable: false },
  { name: "score_opt", type: "FLOAT64", nullable: true },
  { name: "price", type: "DECIMAL", precision: 18, scale: 2, nullable: false },
  { name: "amount", type: "DECIMAL", precision: 38, scale: 6, nullable: true },
  { name: "active", type: "BOOLEAN", nullable: false },
  { name: "flag", type: "BOOLEAN", nullable: true },
  { name: "day", type: "DATE", nullable: false },
  { name: "day_opt", type: "DATE", nullable: true },
  { name: "ts", type: "DATETIME", nullable: false },
  { name: "ts_opt", type: "DATETIME", nullable: true },
];
const byName = new Map(columns.map((c) => [c.name, c]));

// ---- deterministic data, generated directly in the JSON representation readers return ----

function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = prng(20240501);
const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
const pick = <T>(items: readonly T[]): T => items[int(0, items.length - 1)]!;
const maybe = <T>(p: number, make: () => T): T | null => (random() < p ? null : make());

const NAMES = [
  "",
  "O'Reilly",
  "a\\b",
  "x' OR 1=1 --",
  "50%_off",
  "100% cotton",
  "under_score",
  "Ωmega",
  "\uE000private",
  "😀 grin",
  "数据",
  "a\0b",
  "tab\there",
  "line\nbreak",
  "Zed",
  "apple",
  "Apple",
];
const CATEGORIES = ["books", "music", "film", "games", "tools"];
const DAY0 = Date.UTC(2024, 0, 1);

const fmtDay = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const fmtTs = (ms: number) => `${new Date(ms).toISOString().slice(0, 19)}Z`;

function fmtScaled(unscaled: bigint, scale: number): string {
  const sign = unscaled < 0n ? "-" : "";
  const digits = (unscaled < 0n ? -unscaled : unscaled).toString().padStart(scale + 1, "0");
  return `${sign}${digits.slice(0, digits.length - scale)}.${digits.slice(digits.length - scale)}`;
}

function randomBig(): string {
  if (random() < 0.3) return String(int(-1000, 1000));
  const hi = BigInt(int(0, 2 ** 32 - 1));
  const lo = BigInt(int(0, 2 ** 32 - 1));
  return BigInt.asIntN(64, (hi << 32n) | lo).toString();
}

function randomAmount(): string {
  const digits = Array.from({ length: int(1, 38) }, () => int(0, 9)).join("");
  const unscaled = BigInt(digits) * (random() < 0.3 ? -1n : 1n);
  return fmtScaled(unscaled, 6);
}

// Multiples of 1/64: 18.16's float parser is exact on them, so the model can compare with ===.
const randomFloat = () => (random() < 0.2 ? int(-5, 5) : int(-64_000, 64_000) / 64);

function makeRow(id: number): Row {
  return {
    id: String(id),
    name: random() < 0.25 ? pick(NAMES) : `name-${int(0, 2999)}`,
    note: maybe(0.3, () => (random() < 0.2 ? pick(NAMES) : `note ${int(0, 99)}`)),
    category: pick(CATEGORIES),
    qty: int(-1000, 1000),
    qty_opt: maybe(0.2, () => int(-50, 50)),
    big: maybe(0.2, randomBig),
    score: randomFloat(),
    score_opt: maybe(0.25, randomFloat),
    price: fmtScaled(BigInt(int(-99_999, 9_999_999)), 2),
    amount: maybe(0.2, randomAmount),
    active: random() < 0.5,
    flag: maybe(0.3, () => random() < 0.5),
    day: fmtDay(DAY0 + int(0, 59) * 86_400_000),
    day_opt: maybe(0.3, () => fmtDay(DAY0 + int(0, 59) * 86_400_000)),
    ts: fmtTs(DAY0 + int(0, 60 * 86_400 - 1) * 1000),
    ts_opt: maybe(0.3, () => fmtTs(DAY0 + int(0, 60 * 86_400 - 1) * 1000)),
  };
}

// ---- the model: ordering as ClickHouse orders (bytes for strings), NULLs last ----

// Plain < on JS strings compares UTF-16 code units, which orders U+E000 after 😀; UTF-8 bytes do not.
const utf8 = (s: string) => Buffer.from(s, "utf8");
const compareBytes = (a: string, b: string) => (a === b ? 0 : Buffer.compare(utf8(a), utf8(b)));
const unscaled = (s: string) => BigInt(s.replace(".", ""));
const sign = (n: bigint | number) => (n < 0 ? -1 : n > 0 ? 1 : 0);

function compareValues(column: Column, a: unknown, b: unknown): number {
  switch (column.type) {
    case "STRING":
      return compareBytes(a as string, b as string);
    case "INT64":
      return sign(BigInt(a as string) - BigInt(b as string));
    case "DECIMAL":
      return sign(unscaled(a as string) - unscaled(b as string));
    case "BOOLEAN":
      return Number(a) - Number(b);
    case "DATE":
    case "DATETIME":
      return a === b ? 0 : (a as string) < (b as string) ? -1 : 1;
    default:
      return sign((a as number) - (b as number));
  }
}

function sortModel(rows: Row[], orderBy: RecordOrder): Row[] {
  const keyBytes = new Map(rows.map((r) => [r, utf8(keyOf(r))]));
  return [...rows].sort((x, y) => {
    for (const { column, direction } of orderBy) {
      const a = x[column] ?? null;
      const b = y[column] ?? null;
      if (a === null || b === null) {
        if (a !== b) return a === null ? 1 : -1; // NULLs last in both directions
        continue;
      }
      const c = compareValues(byName.get(column)!, a, b);
      if (c !== 0) return direction === "ASC" ? c : -c;
    }
    return Buffer.compare(keyBytes.get(x)!, keyBytes.get(y)!);
  });
}

const keyOf = (row: Row) => String(row.id);

// ---- fixtures ----

const config = baseConfig();
const database = uniqueName("t");
const dataset: DatasetRef = { id: "records-test", tableName: "ds_records", columns, keyColumns: ["id"] };
const model = new Map<string, Row>();
let ch: ClickHouse;
let reader: RecordsReader;
let deletedCount = 0;

const live = () => [...model.values()];

async function expectBadInput(promise: Promise<unknown>, message: string | RegExp): Promise<AppError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe("BAD_USER_INPUT");
  expect((error as AppError).message).toMatch(message);
  return error as AppError;
}

async function pool<T>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

beforeAll(async () => {
  ch = createClickHouse(config, { database: "default" });
  await ch.command(sql`CREATE DATABASE ${ident(database)}`);
  await createDatasetTable(ch, database, dataset.tableName, columns);
  reader = new RecordsReader(ch, database, { maxLimit: 1000 });

  const first = Array.from({ length: 10_000 }, (_, i) => makeRow(i + 1));
  first.push({ ...makeRow(10_001), name: HOSTILE });
  expect(await writeRecords(ch, database, dataset, first, { version: 1, runId: "run-1" })).toBe(10_001);
  for (const row of first) model.set(keyOf(row), row);

  // Overwrites at version 3, then a stale version 2 of some of them arriving late: the highest
  // version must win, not the last insert. The changed values move rows across filters and sorts.
  const ids = [...model.keys()].filter((k) => k !== "10001");
  const overwritten = Array.from({ length: 600 }, () => pick(ids)).filter((k, i, a) => a.indexOf(k) === i);
  const newer = overwritten.map((id) => ({ ...makeRow(Number(id)), category: "updated" }));
  await writeRecords(ch, database, dataset, newer, { version: 3n, runId: "run-3" });
  for (const row of newer) model.set(keyOf(row), row);
  const stale = overwritten.slice(0, 200).map((id) => ({ ...makeRow(Number(id)), category: "stale" }));
  await writeRecords(ch, database, dataset, stale, { version: 2, runId: "run-2" });

  // Tombstones (key only) at version 4; 20 of them come back at version 5.
  const deleted = ids.filter((_, i) => i % 61 === 7);
  await writeRecords(
    ch,
    database,
    dataset,
    deleted.map((id) => ({ id })),
    { version: 4, runId: "run-4", deleted: true },
  );
  for (const id of deleted) model.delete(id);
  deletedCount = deleted.length;
  const revived = deleted.slice(0, 20).map((id) => makeRow(Number(id)));
  await writeRecords(ch, database, dataset, revived, { version: 5, runId: "run-5" });
  for (const row of revived) model.set(keyOf(row), row);
}, 60_000);

afterAll(async () => {
  await ch?.command(sql`DROP DATABASE IF EXISTS ${ident(database)}`);
  await ch?.close();
});

// ---- paging ----

async function pageForward(orderBy: RecordOrder, filter?: RecordFilter): Promise<RecordRow[]> {
  const all: RecordRow[] = [];
  let after: string | null = null;
  for (let n = 0; ; n++) {
    const page = await reader.page(dataset, { first: PAGE, after, orderBy, filter });
    expect(page.items.length).toBeLessThanOrEqual(PAGE);
    expect(page.cursors).toHaveLength(page.items.length);
    expect(await pageFlag(page.hasPreviousPage)).toBe(n > 0);
    all.push(...page.items);
    if (!(await pageFlag(page.hasNextPage))) break;
    expect(page.items).toHaveLength(PAGE);
    after = page.cursors.at(-1)!;
  }
  return all;
}

async function pageBackward(orderBy: RecordOrder, filter?: RecordFilter): Promise<RecordRow[]> {
  let all: RecordRow[] = [];
  let before: string | null = null;
  for (let n = 0; ; n++) {
    const page = await reader.page(dataset, { last: PAGE, before, orderBy, filter });
    expect(page.items.length).toBeLessThanOrEqual(PAGE);
    expect(await pageFlag(page.hasNextPage)).toBe(n > 0);
    all = [...page.items, ...all];
    if (!(await pageFlag(page.hasPreviousPage))) break;
    expect(page.items).toHaveLength(PAGE);
    before = page.cursors[0]!;
  }
  return all;
}

const orders: Array<[string, RecordOrder]> = [
  ["no order (by key)", []],
  ...columns.flatMap((c): Array<[string, RecordOrder]> => [
    [`${c.name} ASC`, [{ column: c.name, direction: "ASC" }]],
    [`${c.name} DESC`, [{ column: c.name, direction: "DESC" }]],
  ]),
  [
    "category ASC, score_opt DESC",
    [
      { column: "category", direction: "ASC" },
      { column: "score_opt", direction: "DESC" },
    ],
  ],
  [
    "flag DESC, day_opt ASC, price DESC",
    [
      { column: "flag", direction: "DESC" },
      { column: "day_opt", direction: "ASC" },
      { column: "price", direction: "DESC" },
    ],
  ],
];

describe("records: writing", () => {
  it("stores the latest version of each key, tombstones hidden, values in their JSON representation", async () => {
    expect(await reader.count(dataset)).toBe(model.size);
    const all = await pageForward([]);
    expect(all.map((r) => r.key)).toEqual(sortModel(live(), []).map(keyOf));
    for (const record of all) expect(record.values).toEqual(model.get(record.key));
    // Tombstones stay in the table (they are the latest version of their keys); reads skip them.
    const [tombstones] = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM ${ident(database, dataset.tableName)} FINAL WHERE _deleted = 1`,
    );
    expect(Number(tombstones!.n)).toBe(deletedCount - 20);
  });

  it("normalises equivalent inputs to one key and one representation", async () => {
    const ref: DatasetRef = {
      id: "norm",
      tableName: "ds_norm",
      keyColumns: ["k"],
      columns: [
        { name: "k", type: "INT64", nullable: false },
        { name: "d", type: "DECIMAL", precision: 38, scale: 4, nullable: false },
        { name: "t", type: "DATETIME", nullable: true },
        { name: "b", type: "BOOLEAN", nullable: false },
      ],
    };
    await createDatasetTable(ch, database, ref.tableName, ref.columns);
    await writeRecords(
      ch,
      database,
      ref,
      [{ k: 42n, d: "1.5", t: new Date("2024-03-01T10:00:00.900Z"), b: 1 }],
      {
        version: 1,
        runId: "r",
      },
    );
    await writeRecords(
      ch,
      database,
      ref,
      [{ k: "42", d: "99999999999999999999999999999999.9999", t: "2024-03-01T12:00:00+02:00", b: true }],
      {
        version: 2,
        runId: "r",
      },
    );
    const page = await reader.page(ref, { first: 10 });
    expect(page.items).toEqual([
      {
        key: "42",
        values: { k: "42", d: "99999999999999999999999999999999.9999", t: "2024-03-01T10:00:00Z", b: true },
      },
    ]);
    await expect(
      writeRecords(ch, database, ref, [{ k: 1, d: "1.23456", t: null, b: false }], {
        version: 1,
        runId: "r",
      }),
    ).rejects.toThrow(/Row 0: Column "d" \(DECIMAL\) has more than 4 digits/);
  });
});

describe("records: keyset paging", () => {
  it("pages forward and backward under every order, each live row exactly once, in order", async () => {
    await pool(orders, 6, async ([label, orderBy]) => {
      const expected = sortModel(live(), orderBy).map(keyOf);
      const forward = (await pageForward(orderBy)).map((r) => r.key);
      expect(forward, `${label} forward`).toEqual(expected);
      const backward = (await pageBackward(orderBy)).map((r) => r.key);
      expect(backward, `${label} backward`).toEqual(expected);
    });
  }, 120_000);

  it("pages with a filter in both directions", async () => {
    const filter: RecordFilter = {
      or: [
        { column: "category", in: ["books", "updated"] },
        { and: [{ column: "qty", gte: 0 }, { not: { column: "note", isNull: true } }] },
      ],
    };
    const orderBy: RecordOrder = [
      { column: "amount", direction: "DESC" },
      { column: "active", direction: "ASC" },
    ];
    const matching = live().filter(
      (r) =>
        r.category === "books" || r.category === "updated" || ((r.qty as number) >= 0 && r.note !== null),
    );
    const expected = sortModel(matching, orderBy).map(keyOf);
    expect(expected.length).toBeGreaterThan(PAGE * 4);
    expect((await pageForward(orderBy, filter)).map((r) => r.key)).toEqual(expected);
    expect((await pageBackward(orderBy, filter)).map((r) => r.key)).toEqual(expected);
    expect(await reader.count(dataset, filter)).toBe(expected.length);
  });

  it("answers first: 0 and an empty result", async () => {
    const zero = await reader.page(dataset, { first: 0 });
    expect(zero).toEqual({ items: [], cursors: [], hasNextPage: true, hasPreviousPage: false });
    const none = await reader.page(dataset, { first: 10, filter: { column: "category", eq: "nope" } });
    expect(none).toEqual({ items: [], cursors: [], hasNextPage: false, hasPreviousPage: false });
  });

  it("refuses forged and foreign cursors", async () => {
    const orderBy: RecordOrder = [{ column: "qty", direction: "ASC" }];
    const page = await reader.page(dataset, { first: 3, orderBy });
    const cursor = page.cursors[2]!;
    // Valid for its own order.
    await reader.page(dataset, { first: 3, orderBy, after: cursor });

    const forged = [
      "not a cursor!",
      "AAAA",
      encodeCursor(["x"]),
      Buffer.from(JSON.stringify([1, "zzzzzzzz", 5, "1"])).toString("base64url"),
    ];
    for (const after of forged) {
      const error = await expectBadInput(
        reader.page(dataset, { first: 3, orderBy, after }),
        "Invalid cursor",
      );
      expect(error.fields).toEqual({ argument: "after" });
    }
    // Same shape, another order: the fingerprint tells them apart.
    await expectBadInput(
      reader.page(dataset, { first: 3, orderBy: [{ column: "qty", direction: "DESC" }], after: cursor }),
      "Invalid cursor",
    );
    await expectBadInput(reader.page(dataset, { last: 3, before: cursor }), "Invalid cursor");
    // Right fingerprint, value of the wrong type.
    const [version, fp, , key] = JSON.parse(Buffer.from(cursor, "base64url").toString()) as unknown[];
    for (const bad of ["abc", 1.5, null, "1; DROP TABLE x"]) {
      const tampered = Buffer.from(JSON.stringify([version, fp, bad, key])).toString("base64url");
      await expectBadInput(reader.page(dataset, { first: 3, orderBy, after: tampered }), "Invalid cursor");
    }
    await expectBadInput(reader.page(dataset, { first: 1001 }), /first must be between 0 and 1000/);
    await expectBadInput(
      reader.page(dataset, { first: 1, orderBy: [{ column: "nope", direction: "ASC" }] }),
      /unknown column/,
    );
  });

  it("measures a first page against a deep page", async () => {
    const timings: Record<string, { first: number; deep: number }> = {};
    for (const [label, orderBy] of [
      ["by key", []],
      ["score DESC", [{ column: "score", direction: "DESC" }]],
      ["note ASC (nullable)", [{ column: "note", direction: "ASC" }]],
    ] as Array<[string, RecordOrder]>) {
      const sorted = sortModel(live(), orderBy);
      const deep = await reader.page(dataset, { last: 1, orderBy });
      // A cursor ~250 rows from the end: the last full page of the listing.
      const deepCursor = (await reader.page(dataset, { last: PAGE + 1, orderBy })).cursors[0]!;
      const time = async (after: string | null) => {
        const samples: number[] = [];
        for (let i = 0; i < 7; i++) {
          const start = performance.now();
          await reader.page(dataset, { first: PAGE, after, orderBy });
          samples.push(performance.now() - start);
        }
        return samples.sort((a, b) => a - b)[3]!;
      };
      timings[label] = { first: await time(null), deep: await time(deepCursor) };
      expect(deep.items[0]!.key).toBe(keyOf(sorted.at(-1)!));
    }
    console.info(`records page of ${PAGE} (median of 7, ms):`, JSON.stringify(timings));
  });
});

describe("records: filters on the server", () => {
  const note = (r: Row) => r.note as string | null;
  const cases: Array<[string, RecordFilter, (r: Row) => boolean]> = [
    ["STRING eq", { column: "category", eq: "music" }, (r) => r.category === "music"],
    [
      "nullable ne skips NULLs",
      { column: "note", ne: "note 5" },
      (r) => note(r) !== null && note(r) !== "note 5",
    ],
    ["not eq keeps NULLs", { not: { column: "note", eq: "note 5" } }, (r) => note(r) !== "note 5"],
    ["eq null", { column: "note", eq: null }, (r) => note(r) === null],
    ["isNull false", { column: "big", isNull: false }, (r) => r.big !== null],
    ["contains is literal", { column: "name", contains: "%_" }, (r) => (r.name as string).includes("%_")],
    ["contains %", { column: "note", contains: "%" }, (r) => note(r)?.includes("%") ?? false],
    ["startsWith", { column: "name", startsWith: "name-1" }, (r) => (r.name as string).startsWith("name-1")],
    [
      "INT32 range",
      {
        and: [
          { column: "qty", gt: -10 },
          { column: "qty", lte: "10" },
        ],
      },
      (r) => (r.qty as number) > -10 && (r.qty as number) <= 10,
    ],
    [
      "INT64 gt",
      { column: "big", gt: "4611686018427387904" },
      (r) => r.big !== null && BigInt(r.big as string) > 4611686018427387904n,
    ],
    ["INT64 in", { column: "big", in: [1, "2", -3] }, (r) => ["1", "2", "-3"].includes(r.big as string)],
    ["FLOAT64 lt", { column: "score", lt: -0.5 }, (r) => (r.score as number) < -0.5],
    ["DECIMAL gte", { column: "price", gte: "1000.5" }, (r) => unscaled(r.price as string) >= 100050n],
    [
      "DECIMAL(38) lt",
      { column: "amount", lt: "-1000000000000000000000000.5" },
      (r) => r.amount !== null && unscaled(r.amount as string) < -1000000000000000000000000500000n,
    ],
    ["BOOLEAN eq", { column: "active", eq: true }, (r) => r.active === true],
    ["nullable BOOLEAN ne", { column: "flag", ne: false }, (r) => r.flag === true],
    [
      "DATE between",
      {
        and: [
          { column: "day", gte: "2024-01-10" },
          { column: "day", lt: "2024-01-20" },
        ],
      },
      (r) => (r.day as string) >= "2024-01-10" && (r.day as string) < "2024-01-20",
    ],
    [
      "DATETIME with an offset",
      { column: "ts", gte: "2024-02-01T02:00:00+02:00" },
      (r) => (r.ts as string) >= "2024-02-01T00:00:00Z",
    ],
    [
      "nullable DATE lt",
      { column: "day_opt", lt: "2024-01-05" },
      (r) => r.day_opt !== null && (r.day_opt as string) < "2024-01-05",
    ],
    ["empty or", { or: [] }, () => false],
    ["empty filter", {}, () => true],
  ];

  it.each(cases)("%s", async (_label, filter, predicate) => {
    const expected = live().filter(predicate).length;
    expect(await reader.count(dataset, filter)).toBe(expected);
  });

  it("matches a hostile value as data", async () => {
    const page = await reader.page(dataset, { first: 10, filter: { column: "name", eq: HOSTILE } });
    expect(page.items.map((r) => r.key)).toEqual(["10001"]);
    expect(page.items[0]!.values.name).toBe(HOSTILE);
    expect(await reader.count(dataset, { column: "name", contains: '\\ "; DROP' })).toBe(1);
    const [table] = await ch.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.tables WHERE database = ${database} AND name = ${dataset.tableName}`,
    );
    expect(Number(table!.n)).toBe(1);
    for (const name of NAMES) {
      expect(await reader.count(dataset, { column: "name", eq: name }), JSON.stringify(name)).toBe(
        live().filter((r) => r.name === name).length,
      );
    }
  });
});

describe("records: exports in key ranges", () => {
  // A server that reads a FINAL in one stream (18.16) gets an export as key ranges it reads side by
  // side, merged by key: the bytes must be those of one range, with every overwrite, late stale
  // version, tombstone and revival above resolved within its range.
  const text = async (bytes: AsyncIterable<Buffer> | null) => {
    const chunks: Buffer[] = [];
    for await (const chunk of bytes!) chunks.push(chunk);
    return Buffer.concat(chunks).toString("utf8");
  };

  it("writes the same bytes in key ranges as in one, in key order", async () => {
    // The columns the engine writes on every server: no 38-digit decimal, no boolean for NDJSON.
    const narrow = {
      ...dataset,
      columns: columns.filter((c) => c.name !== "amount" && c.type !== "BOOLEAN"),
    };
    const split = new RecordsReader(
      ch,
      database,
      { maxLimit: 1000 },
      { ranges: 8, fromRows: 2, sampleEvery: 1 },
    );
    const whole = new RecordsReader(
      ch,
      database,
      { maxLimit: 1000 },
      { ranges: 1, fromRows: 2, sampleEvery: 1 },
    );
    const inRanges = (await ch.version()).major < 20;
    const exports = [
      { filter: null, after: null, limit: null },
      { filter: { column: "category", eq: "music" }, after: "5000", limit: 300 },
    ];
    for (const format of ["csv", "tsv", "ndjson"] as const) {
      for (const range of exports) {
        const statement = await split.exportStatement(narrow, range, format);
        expect(statement?.text.includes(" UNION ALL "), format).toBe(inRanges);
        const bytes = await text(await split.exportBytes(narrow, range, format));
        expect(bytes, format).toBe(await text(await whole.exportBytes(narrow, range, format)));
        if (format !== "ndjson") continue;
        const keys = [...model.entries()]
          .filter(
            ([key, row]) =>
              (range.after === null || key > range.after) && (!range.filter || row.category === "music"),
          )
          .map(([key]) => key)
          .sort()
          .slice(0, range.limit ?? undefined);
        const lines = bytes.split("\n").filter(Boolean);
        expect(lines.map((line) => (JSON.parse(line) as { _key: string })._key)).toEqual(keys);
      }
    }
  });
});

describe("records: byKey", () => {
  it("finds live records and not deleted or unknown ones", async () => {
    const row = live()[123]!;
    expect(await reader.byKey(dataset, keyOf(row))).toEqual({ key: keyOf(row), values: row });
    expect(await reader.byKey(dataset, "10001")).toMatchObject({ values: { name: HOSTILE } });
    const deletedId = [...Array(10_000).keys()].map((i) => String(i + 1)).find((id) => !model.has(id))!;
    expect(await reader.byKey(dataset, deletedId)).toBeNull();
    expect(await reader.byKey(dataset, "' OR 1=1 --")).toBeNull();
    await expectBadInput(reader.byKey(dataset, "\uD800"), "Invalid key");
  });
});

describe("records: aggregates", () => {
  function groupBy<K>(rows: Row[], key: (r: Row) => K): Map<K, Row[]> {
    const groups = new Map<K, Row[]>();
    for (const r of rows) groups.set(key(r), [...(groups.get(key(r)) ?? []), r]);
    return groups;
  }

  // ClickHouse's quantile interpolates linearly between the two nearest of the sorted values.
  function quantile(values: number[], q: number): number {
    const sorted = [...values].sort((a, b) => a - b);
    const index = q * (sorted.length - 1);
    const lo = Math.floor(index);
    const hi = Math.min(lo + 1, sorted.length - 1);
    return sorted[lo]! + (index - lo) * (sorted[hi]! - sorted[lo]!);
  }

  async function allGroups(args: Parameters<RecordsReader["aggregate"]>[1], size: number) {
    const items: { group: Record<string, unknown>; metrics: Record<string, unknown> }[] = [];
    let after: string | null = null;
    for (let n = 0; ; n++) {
      const page = await reader.aggregate(dataset, { ...args, first: size, after });
      expect(await pageFlag(page.hasPreviousPage)).toBe(n > 0);
      items.push(...page.items);
      if (!(await pageFlag(page.hasNextPage))) return items;
      after = page.cursors.at(-1)!;
    }
  }

  it("counts per day, paging through the groups", async () => {
    const items = await allGroups(
      { groupBy: [{ column: "ts", bucket: "DAY" }], metrics: [{ fn: "COUNT" }] },
      7,
    );
    const expected = [...groupBy(live(), (r) => (r.ts as string).slice(0, 10))]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([day, rows]) => ({ group: { ts: day }, metrics: { count: rows.length } }));
    expect(items).toEqual(expected);
  });

  it("sums, averages, uniques and quantiles per category", async () => {
    const items = await allGroups(
      {
        groupBy: [{ column: "category" }],
        metrics: [
          { fn: "SUM", column: "price" },
          { fn: "SUM", column: "big" },
          { fn: "SUM", column: "qty" },
          { fn: "SUM", column: "amount", alias: "amount_total" },
          { fn: "AVG", column: "score" },
          { fn: "UNIQ", column: "name" },
          { fn: "QUANTILE", column: "score", q: 0.9 },
          { fn: "MIN", column: "amount" },
          { fn: "MAX", column: "ts" },
          { fn: "COUNT", column: "note" },
        ],
      },
      2,
    );
    const groups = [...groupBy(live(), (r) => r.category as string)].sort(([a], [b]) => compareBytes(a, b));
    expect(items.map((i) => i.group)).toEqual(groups.map(([category]) => ({ category })));
    for (const [i, [, rows]] of groups.entries()) {
      const m = items[i]!.metrics;
      const sum = (col: string) =>
        rows.reduce((s, r) => s + (r[col] === null ? 0n : unscaled(String(r[col]))), 0n);
      expect(m.sum_price).toBe(fmtScaled(sum("price"), 2));
      expect(m.sum_big).toBe(sum("big").toString());
      expect(m.sum_qty).toBe(sum("qty").toString());
      expect(m.amount_total).toBe(fmtScaled(sum("amount"), 6));
      const scores = rows.map((r) => r.score as number);
      expect(m.avg_score).toBeCloseTo(scores.reduce((a, b) => a + b, 0) / scores.length, 9);
      expect(m.uniq_name).toBe(new Set(rows.map((r) => r.name)).size);
      expect(m.quantile_score_0_9).toBeCloseTo(quantile(scores, 0.9), 9);
      const amounts = rows.map((r) => r.amount).filter((a): a is string => a !== null);
      expect(m.min_amount).toBe(amounts.reduce((a, b) => (unscaled(b) < unscaled(a) ? b : a)));
      expect(m.max_ts).toBe(
        rows
          .map((r) => r.ts as string)
          .sort()
          .at(-1),
      );
      expect(m.count_note).toBe(rows.filter((r) => r.note !== null).length);
    }
  });

  it("groups NULL last and buckets by week, month and hour", async () => {
    const flags = await allGroups(
      { groupBy: [{ column: "flag" }], metrics: [{ fn: "COUNT", alias: "n" }] },
      1,
    );
    const count = (p: (r: Row) => boolean) => live().filter(p).length;
    expect(flags).toEqual([
      { group: { flag: false }, metrics: { n: count((r) => r.flag === false) } },
      { group: { flag: true }, metrics: { n: count((r) => r.flag === true) } },
      { group: { flag: null }, metrics: { n: count((r) => r.flag === null) } },
    ]);

    const months = await allGroups(
      { groupBy: [{ column: "day_opt", bucket: "MONTH" }, { column: "active" }], metrics: [{ fn: "COUNT" }] },
      3,
    );
    const expectedMonths = [
      ...groupBy(
        live(),
        (r) => `${r.day_opt === null ? "~" : (r.day_opt as string).slice(0, 7)}|${r.active}`,
      ),
    ]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, rows]) => {
        const [month, active] = k.split("|");
        return {
          group: { day_opt: month === "~" ? null : `${month}-01`, active: active === "true" },
          metrics: { count: rows.length },
        };
      });
    expect(months).toEqual(expectedMonths);

    const weeks = await reader.aggregate(dataset, {
      groupBy: [{ column: "day", bucket: "WEEK" }],
      metrics: [{ fn: "COUNT" }],
      first: 100,
    });
    for (const item of weeks.items)
      expect(new Date(`${item.group.day as string}T00:00:00Z`).getUTCDay()).toBe(1);
    expect(weeks.items.reduce((s, i) => s + (i.metrics.count as number), 0)).toBe(model.size);

    const hours = await reader.aggregate(dataset, {
      groupBy: [{ column: "ts", bucket: "HOUR" }],
      metrics: [{ fn: "COUNT" }],
      filter: { column: "day", eq: "2024-01-15" },
      first: 1000,
    });
    const expectedHours = [
      ...groupBy(
        live().filter((r) => r.day === "2024-01-15"),
        (r) => `${(r.ts as string).slice(0, 13)}:00:00Z`,
      ),
    ]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([hour, rows]) => ({ group: { ts: hour }, metrics: { count: rows.length } }));
    expect(hours.items).toEqual(expectedHours);
  });

  it("aggregates without groupBy as one group", async () => {
    const page = await reader.aggregate(dataset, {
      metrics: [{ fn: "COUNT" }, { fn: "MAX", column: "big" }],
      first: 10,
    });
    const bigs = live()
      .map((r) => r.big)
      .filter((b): b is string => b !== null)
      .map(BigInt);
    expect(page.items).toEqual([
      {
        group: {},
        metrics: { count: model.size, max_big: bigs.reduce((a, b) => (b > a ? b : a)).toString() },
      },
    ]);
    expect(await pageFlag(page.hasNextPage)).toBe(false);
    const next = await reader.aggregate(dataset, {
      metrics: [{ fn: "COUNT" }],
      first: 10,
      after: page.cursors[0],
    });
    expect(next.items).toEqual([]);
    const empty = await reader.aggregate(dataset, {
      metrics: [{ fn: "COUNT" }, { fn: "AVG", column: "qty" }, { fn: "SUM", column: "price" }],
      filter: { column: "category", eq: "none" },
      first: 10,
    });
    expect(empty.items).toEqual([{ group: {}, metrics: { count: 0, avg_qty: null, sum_price: "0.00" } }]);
  });

  it("refuses what it cannot compute", async () => {
    const agg = (args: Partial<Parameters<RecordsReader["aggregate"]>[1]>) =>
      reader.aggregate(dataset, { metrics: [{ fn: "COUNT" }], first: 10, ...args });
    await expectBadInput(agg({ metrics: [{ fn: "SUM", column: "name" }] }), /SUM needs a numeric column/);
    await expectBadInput(agg({ metrics: [{ fn: "AVG" }] }), /AVG needs a column/);
    await expectBadInput(
      agg({ metrics: [{ fn: "QUANTILE", column: "qty", q: 1 }] }),
      /strictly between 0 and 1/,
    );
    await expectBadInput(
      agg({ metrics: [{ fn: "COUNT" }, { fn: "COUNT" }] }),
      /two metrics are called "count"/,
    );
    await expectBadInput(agg({ metrics: [] }), /at least one metric/);
    await expectBadInput(
      agg({ groupBy: [{ column: "qty", bucket: "DAY" }] }),
      /needs a DATE or DATETIME column/,
    );
    await expectBadInput(agg({ groupBy: [{ column: "day", bucket: "HOUR" }] }), /HOUR needs a DATETIME/);
    await expectBadInput(agg({ groupBy: columns.slice(0, 6).map((c) => ({ column: c.name })) }), /at most 5/);
    const page = await reader.aggregate(dataset, {
      groupBy: [{ column: "category" }],
      metrics: [{ fn: "COUNT" }],
      first: 1,
    });
    await expectBadInput(
      reader.aggregate(dataset, {
        groupBy: [{ column: "name" }],
        metrics: [{ fn: "COUNT" }],
        first: 1,
        after: page.cursors[0],
      }),
      "Invalid cursor",
    );
    await expectBadInput(reader.page(dataset, { first: 1, after: page.cursors[0] }), "Invalid cursor");
  });
});

describe("records: composite keys", () => {
  it("pages a two-column key once and finds records by their canonical key", async () => {
    const ref: DatasetRef = {
      id: "composite",
      tableName: "ds_composite",
      keyColumns: ["region", "n"],
      columns: [
        { name: "region", type: "STRING", nullable: false },
        { name: "n", type: "INT32", nullable: false },
        { name: "value", type: "FLOAT64", nullable: true },
      ],
    };
    await createDatasetTable(ch, database, ref.tableName, ref.columns);
    const rows = ["north", "south", 'we"st', "eä"].flatMap((region) =>
      Array.from({ length: 175 }, (_, n) => ({ region, n, value: n % 7 === 0 ? null : n / 4 })),
    );
    await writeRecords(ch, database, ref, rows, { version: 1, runId: "c", chunkSize: 128 });
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const page = await reader.page(ref, {
        first: 100,
        after,
        orderBy: [{ column: "value", direction: "DESC" }],
      });
      seen.push(...page.items.map((r) => r.key));
      if (!(await pageFlag(page.hasNextPage))) break;
      after = page.cursors.at(-1)!;
    }
    const keys = rows.map((r) => JSON.stringify([r.region, String(r.n)]));
    expect(seen).toHaveLength(rows.length);
    expect(new Set(seen)).toEqual(new Set(keys));
    expect(await reader.byKey(ref, JSON.stringify(['we"st', "12"]))).toEqual({
      key: '["we\\"st","12"]',
      values: { region: 'we"st', n: 12, value: 3 },
    });
    expect(await reader.count(ref, { column: "value", isNull: true })).toBe(4 * 25);
  });
});
