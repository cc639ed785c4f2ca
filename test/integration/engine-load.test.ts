// The engine load (src/pipelines/engine) against the Node path as the reference: the same local CSV
// files through the same pipelines on two stacks, one with PIPELINE_ENGINE_LOAD on and one with it
// off, must give the same run counters, the same records as buyers read them, and the same
// quarantined rows (row numbers, raw text, reasons). The files mix values the SQL proves with
// values only the Node steps judge; each case also asserts which path the engine stack took.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LIVE, liveRows } from "../../src/catalog/dataset-table.js";
import { ident, sql } from "../../src/db/sql.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDatasetDocument,
  CreatePipelineDocument,
  CreateSourceDocument,
  RecordsDocument,
  RunPipelineDocument,
  SetAccountPlanDocument,
  type CreateDatasetMutationVariables,
} from "../generated/graphql.js";
import { uniqueName } from "../support/databases.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

type Columns = CreateDatasetMutationVariables["input"]["columns"];

interface Side {
  stack: TestStack;
  publisher: TestAccount;
}

let root: string;
let engine: Side;
let node: Side;

async function side(engineLoad: boolean): Promise<Side> {
  // A server parses every file of these cases as two parts at once (a real file from 8 MiB): the
  // second part's rows, row numbers and problems must come out as the Node path gives them.
  const stack = await startStack(
    {
      FILE_SOURCE_ROOT: root,
      PIPELINE_ENGINE_LOAD: engineLoad ? "true" : "false",
      PIPELINE_ENGINE_PARTS_FROM_BYTES: "1",
    },
    { worker: true },
  );
  const publisher = await stack.signup(`Engine ${engineLoad}`, "PUBLISHER");
  const admin = await stack.admin();
  await stack.graphql(SetAccountPlanDocument, { accountId: publisher.accountId, plan: "PRO" }, admin.headers);
  return { stack, publisher };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "datahus-engine-load-"));
  [engine, node] = await Promise.all([side(true), side(false)]);
}, 120_000);

afterAll(async () => {
  await Promise.all([engine?.stack.close(), node?.stack.close()]);
  await rm(root, { recursive: true, force: true });
});

interface Case {
  columns: Columns;
  keyColumns: string[];
  steps: unknown[];
  csv: string;
  duplicateKeys?: "LAST_WINS" | "FIRST_WINS" | "QUARANTINE";
  mode?: "FULL_REFRESH" | "INCREMENTAL";
}

async function load(s: Side, c: Case, file: string) {
  const { stack, publisher } = s;
  const slug = uniqueName("eng").toLowerCase();
  const ds = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: slug,
        category: "test",
        access: "OPEN",
        keyColumns: c.keyColumns,
        columns: c.columns,
      },
    },
    publisher.headers,
  );
  if (!ds.data) throw new Error(JSON.stringify(ds.errors));
  const source = await stack.graphql(
    CreateSourceDocument,
    { input: { name: "file", type: "FILE", config: { path: file } } },
    publisher.headers,
  );
  if (!source.data) throw new Error(JSON.stringify(source.errors));
  const pipeline = await stack.graphql(
    CreatePipelineDocument,
    {
      input: {
        sourceId: source.data.createSource.id,
        datasetId: ds.data.createDataset.id,
        name: "load",
        steps: c.steps,
        mode: c.mode ?? "FULL_REFRESH",
        duplicateKeys: c.duplicateKeys ?? "LAST_WINS",
      },
    },
    publisher.headers,
  );
  if (!pipeline.data) throw new Error(JSON.stringify(pipeline.errors));
  const started = await stack.graphql(
    RunPipelineDocument,
    { id: pipeline.data.createPipeline.id },
    publisher.headers,
  );
  if (!started.data) throw new Error(JSON.stringify(started.errors));
  const runId = decodeGlobalId(started.data.runPipeline.id).id;
  const prisma = stack.app.stores.prisma;
  const deadline = Date.now() + 60_000;
  let run = await prisma.pipelineRun.findUniqueOrThrow({ where: { id: runId } });
  while (!["SUCCEEDED", "FAILED", "CANCELLED"].includes(run.status)) {
    if (Date.now() > deadline) throw new Error(`run ${runId} did not finish`);
    await new Promise((r) => setTimeout(r, 100));
    run = await prisma.pipelineRun.findUniqueOrThrow({ where: { id: runId } });
  }
  const logs = await prisma.pipelineLog.findMany({ where: { runId }, orderBy: { id: "asc" } });
  const records = await stack.graphql(RecordsDocument, { slug, first: 100 }, publisher.headers);
  if (!records.data?.dataset) throw new Error(JSON.stringify(records.errors));
  const ch = stack.app.stores.clickhouse;
  const quarantined = await ch.query<{ row_number: number; raw: string; reasons: string[]; origin: string }>(
    sql`SELECT row_number, raw, reasons, origin FROM ${ident(stack.app.config.CLICKHOUSE_DATABASE, "quarantine")} WHERE run_id = ${runId} ORDER BY row_number`,
  );
  // What the dataset says it holds, and what its table holds (the runner takes a full refresh's
  // count from its staging table instead of counting the live one again).
  const dataset = await prisma.dataset.findUniqueOrThrow({ where: { slug } });
  const [live] = await ch.query<{ n: string }>(
    sql`SELECT toString(count()) AS n FROM ${liveRows(stack.app.config.CLICKHOUSE_DATABASE, dataset.tableName)} WHERE ${LIVE}`,
  );
  return {
    liveRows: Number(live!.n),
    counters: {
      rowCount: Number(dataset.rowCount),
      status: run.status,
      error: run.error,
      rowsRead: Number(run.rowsRead),
      rowsWritten: Number(run.rowsWritten),
      rowsRejected: Number(run.rowsRejected),
      rowsFiltered: Number(run.rowsFiltered),
      rowsDuplicate: Number(run.rowsDuplicate),
      bytesRead: Number(run.bytesRead),
      newFields: run.newFields,
    },
    records: records.data.dataset.records.edges.map((e) => ({ key: e.node.key, values: e.node.values })),
    quarantined: quarantined.map((q) => ({ ...q, row_number: Number(q.row_number) })),
    messages: logs.map((l) => l.message),
  };
}

/** Loads the case on both stacks; the engine side must have taken `path`. */
async function compare(c: Case, path: "engine" | "node") {
  const file = `${uniqueName("f")}.csv`;
  await writeFile(join(root, file), c.csv);
  const [byEngine, byNode] = await Promise.all([load(engine, c, file), load(node, c, file)]);
  const took = byEngine.messages.some((m) => m.startsWith("Loaded by ClickHouse")) ? "engine" : "node";
  expect(took, byEngine.messages.join(" | ")).toBe(path);
  expect(byEngine.counters).toEqual(byNode.counters);
  expect(byEngine.records).toEqual(byNode.records);
  expect(byEngine.quarantined).toEqual(byNode.quarantined);
  const c0 = byEngine.counters;
  expect(c0.rowsRead).toBe(c0.rowsWritten + c0.rowsRejected + c0.rowsFiltered + c0.rowsDuplicate);
  expect(c0.rowCount).toBe(byEngine.liveRows);
  expect(byNode.counters.rowCount).toBe(byNode.liveRows);
  return byEngine;
}

const ORDERS: Columns = [
  { name: "id", type: "INT64", nullable: false },
  { name: "category", type: "STRING", nullable: false },
  { name: "amount", type: "DECIMAL", precision: 12, scale: 2, nullable: false },
  { name: "qty", type: "INT32", nullable: false },
  { name: "day", type: "DATE", nullable: false },
  { name: "at", type: "DATETIME", nullable: true },
  { name: "ok", type: "BOOLEAN", nullable: true },
  { name: "note", type: "STRING", nullable: true },
];
const ORDER_STEPS = [
  { op: "trim" },
  { op: "cast", field: "amount", to: "DECIMAL" },
  { op: "cast", field: "ok", to: "BOOLEAN" },
  { op: "cast", field: "at", to: "DATETIME" },
  { op: "validate", field: "qty", min: 0, max: 1000 },
  { op: "validate", field: "category", enum: ["books", "games", "music", "tools"] },
  { op: "validate", field: "note", maxLength: 12 },
];

describe("engine load vs the Node path", () => {
  it("gives the same rows, counters and quarantine for values the SQL proves and values only Node judges", async () => {
    const lines = [
      "id,category,amount,qty,day,at,ok,note",
      '1,books,12.50,3,2024-01-31,2024-01-31T10:00:00Z,true,"plain"',
      '2,"  games ",007.5,0,2024-02-29,2024-02-29 23:59:59,Y,"with, comma"',
      '3,music,-0.00,1000,1970-01-02,,no,"quote ""q"""',
      "4,tools,1234567890.12,1,2105-12-31,2105-12-31T23:59:59Z,0,",
      // Only the Node steps can judge these (or they are refused): each lands where Node puts it.
      "5,books,1.005,1,2024-01-01,,,too many digits",
      "6,books,12,1001,2024-01-01,,,above max",
      "7,films,12,1,2024-01-01,,,not in enum",
      "8,books,12,-1,2024-01-01,,,below min",
      "9,books,12,1,2024-02-30,,,no such day",
      "10,books,12,1,1969-12-31,,,before 1970",
      "11,books,12,1,1970-01-01,,,the epoch",
      "12,books,1 234.5,1,2024-01-01,,,grouped",
      "13,books,12,1,2024-01-01,2024-01-01T10:00:00+02:00,,offset",
      "14,books,12,1,2024-01-01,2024-01-01T10:00:00.5Z,,fraction",
      "15,books,12,1,2024-01-01,,maybe,bad boolean",
      "16,books,12,1,2024-01-01,,,a note that is far too long",
      "17,books,12,x,2024-01-01,,,qty not a number",
      "18,books,,1,2024-01-01,,,no amount",
      "19,books,12,1,,,,no day",
      "20,books,12,1,2024-01-01,,,ünïcödé ok",
      "21,books,12,1,2024-01-01,,,\u00a0nbsp",
      "22,books,12,99999999999,2024-01-01,,,qty overflow",
      "23,books,12,1,2299-12-31,,,late day",
      "24,books,12,1,2024-01-01,,TRUE,upper bool",
      "25,books,+12,1,2024-01-01,,,plus sign",
      "9223372036854775807,books,12,1,2024-01-01,,,max int64",
      "0007,books,12,1,2024-01-01,,,leading zeros id",
      ",books,12,1,2024-01-01,,,no id",
    ];
    const result = await compare(
      { columns: ORDERS, keyColumns: ["id"], steps: ORDER_STEPS, csv: lines.join("\n") + "\n" },
      "engine",
    );
    expect(result.counters.rowsRejected).toBeGreaterThan(5);
    expect(result.records.length).toBeGreaterThan(10);
  });

  it("keeps the last or the first row of a key as the Node path does, NULLs included", async () => {
    const csv = ["id,name,note", "1,a,x", "2,b,", "1,c,", "3,d,y", "2,e,z", "1,f,w", "4,g,"].join("\r\n");
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "name", type: "STRING", nullable: false },
      { name: "note", type: "INT32", nullable: true },
    ];
    const steps = [{ op: "cast", field: "note", to: "INT32" }];
    const last = await compare(
      { columns, keyColumns: ["id"], steps, csv: csv.replace(/,([a-z])$/gm, ",") },
      "engine",
    );
    expect(last.counters.rowsDuplicate).toBe(3);
    // Notes that do not cast are rejected by the Node steps and claim no key.
    await compare({ columns, keyColumns: ["id"], steps, csv, duplicateKeys: "FIRST_WINS" }, "engine");
    await compare(
      {
        columns,
        keyColumns: ["id"],
        steps,
        csv: csv.replace(/,([a-z])$/gm, ","),
        duplicateKeys: "FIRST_WINS",
      },
      "engine",
    );
    // "5 " casts in Node only: a row the Node steps load shares its key with rows the engine loads.
    const shared = csv.replace(/,([a-z])$/gm, ",").replace("1,c,", '1,c,"5 "');
    await compare({ columns, keyColumns: ["id"], steps, csv: shared }, "node");
    await compare({ columns, keyColumns: ["id"], steps, csv, duplicateKeys: "QUARANTINE" }, "node");
  });

  it("two-column keys, renames, selects, defaults and empty keys", async () => {
    const columns: Columns = [
      { name: "region", type: "STRING", nullable: false },
      { name: "n", type: "INT64", nullable: false },
      { name: "label", type: "STRING", nullable: true },
    ];
    const steps = [
      { op: "rename", map: { r: "region", num: "n" } },
      { op: "default", field: "label", value: "none" },
      { op: "select", fields: ["region", "n", "label"] },
    ];
    const csv = [
      "r,num,label,extra",
      "eu,1,a,x",
      "eu,2,,x",
      '"we ""quote""",3,b,x',
      ",4,c,x",
      'us,5,"",x',
      "eu,1,dup,x",
    ].join("\n");
    await compare({ columns, keyColumns: ["region", "n"], steps, csv }, "engine");
  });

  it("trims as JavaScript does: values with spaces at their ends go to the Node steps", async () => {
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "tag", type: "STRING", nullable: false },
      { name: "n", type: "INT64", nullable: true },
    ];
    const steps = [{ op: "trim" }, { op: "validate", field: "tag", enum: [" x", "x", "y"] }];
    const csv = [
      "id,tag,n",
      '1," x",1',
      '2,x," 2"',
      '3,"x ",3',
      '" 4",y,',
      '5,"\u00a0y",5',
      '6," y ",6',
    ].join("\n");
    const result = await compare({ columns, keyColumns: ["id"], steps, csv }, "engine");
    expect(result.records).toHaveLength(6);
  });

  it("reads random well-formed files field for field as our reader does", async () => {
    let state = 4242;
    const next = () => {
      state = (state * 1103515245 + 12345) % 2 ** 31;
      return state / 2 ** 31;
    };
    const pick = <T>(items: readonly T[]) => items[Math.floor(next() * items.length)]!;
    const text = () => {
      const parts = Array.from({ length: Math.floor(next() * 6) }, () =>
        pick(["a", "Z", ",", '""', "\n", "\r\n", " ", "é", "東京", "🎉", "\t", "'", "NULL", "\u0001"]),
      );
      const value = parts.join("");
      return /^[^",\r\n \t]*$/.test(value) && value !== "" && next() < 0.5 ? value : `"${value}"`;
    };
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "a", type: "STRING", nullable: false },
      { name: "b", type: "STRING", nullable: true },
    ];
    for (let file = 0; file < 4; file++) {
      const rows = Array.from({ length: 60 }, (_, i) => `${i + 1},${text()},${text()}`);
      const result = await compare(
        { columns, keyColumns: ["id"], steps: [], csv: `id,a,b\n${rows.join("\n")}\n` },
        "engine",
      );
      expect(result.records).toHaveLength(60);
    }
  });

  it("proves a cast where no column's final check proves it again", async () => {
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "big", type: "DECIMAL", precision: 38, scale: 0, nullable: true },
      { name: "n", type: "INT32", nullable: true },
    ];
    const steps = [
      { op: "cast", field: "dropped", to: "INT32" },
      { op: "cast", field: "big", to: "DECIMAL" },
      { op: "cast", field: "n", to: "INT32" },
      { op: "select", fields: ["id", "big", "n"] },
    ];
    const csv = [
      "id,dropped,big,n",
      "1,5,12,3",
      "2,x,12,3",
      `3,5,${"9".repeat(38)},3`,
      `4,5,-${"9".repeat(37)},3`,
      "5,5,12,2147483648",
      "6,5,12,-7",
      "7,,,",
    ].join("\n");
    await compare({ columns, keyColumns: ["id"], steps, csv }, "engine");
  });

  it("loads into the live table (INCREMENTAL) as the Node path does, and nothing of a refused file", async () => {
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "name", type: "STRING", nullable: true },
      { name: "n", type: "INT32", nullable: true },
    ];
    const base = { columns, keyColumns: ["id"], steps: [{ op: "cast", field: "n", to: "INT32" }] };
    const csv = "id,name,n\n1,a,1\n2,b,x\n1,c,3\n3,d,\n4,e,4\n";
    const loaded = await compare({ ...base, mode: "INCREMENTAL", csv }, "engine");
    expect(loaded.counters).toMatchObject({ rowsWritten: 3, rowsRejected: 1, rowsDuplicate: 1 });
    await compare({ ...base, mode: "INCREMENTAL", csv, duplicateKeys: "FIRST_WINS" }, "engine");
    // The engine reads a file while its bytes are checked: a refused one must leave no row behind.
    await compare({ ...base, mode: "INCREMENTAL", csv: "id,name,n\n1,a,1\n2,b\n3,c,3\n" }, "node");
    await compare({ ...base, csv: "id,name,n\n1,a,1\n2,b\n3,c,3\n" }, "node");
  });

  it("takes the Node path for files ClickHouse might read differently", async () => {
    const columns: Columns = [
      { name: "id", type: "INT32", nullable: false },
      { name: "name", type: "STRING", nullable: true },
    ];
    const base = { columns, keyColumns: ["id"], steps: [] };
    await compare({ ...base, csv: "id,name\n1, padded \n2,b\n" }, "node");
    await compare({ ...base, csv: 'id,name\n1,a"b\n2,b\n' }, "node");
    await compare({ ...base, csv: "id,name\n1,a\n\n2,b\n" }, "node");
    await compare({ ...base, csv: "id,name\n1,a\n2,b,c\n3,c\n" }, "node");
    await compare({ ...base, csv: "id,name\n1,back\\slash\n" }, "node");
    await compare({ ...base, csv: "\ufeffid,name\n1,a\n" }, "node");
    await compare({ ...base, csv: 'id,name\n1,"multi\nline"\n2,"x"y\n' }, "node");
    await compare({ ...base, csv: 'id,name\n1,"multi\nline"\n2,b' }, "engine");
    await compare(
      { ...base, steps: [{ op: "filter", expression: "id > 1" }], csv: "id,name\n1,a\n2,b\n" },
      "node",
    );
  });
});
