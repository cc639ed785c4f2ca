// The publisher's CLI as a publisher runs it: the built binary (`node dist/src/main.js`), talking to
// a real API over HTTP with an API key. A 100,000-row CSV is uploaded in several pushes, each run
// followed to SUCCEEDED, and the dataset exported back and compared row by row.
import { execFile } from "node:child_process";
import { createReadStream } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readRecords } from "../../src/sources/formats/index.js";
import { embeddedEngine } from "../support/databases.js";
import { childEnv } from "../support/flags.js";
import { ok, publishing, type Dataset } from "../support/publishing.js";
import { CreatePipelineDocument } from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

const MAIN = new URL("../../dist/src/main.js", import.meta.url).pathname;
const ROWS = 100_000;

let stack: TestStack;
let publisher: TestAccount;
let dir: string;
let dataset: Dataset;

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

function datahus(args: string[], env: Record<string, string> = {}): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      {
        encoding: "utf8",
        timeout: 240_000,
        maxBuffer: 64 * 1024 * 1024,
        env: childEnv({ DATAHUS_URL: stack.url, DATAHUS_API_KEY: publisher.secret, ...env }),
      },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

/** The row each id stands for, as the file has it and an export gives it back. */
const row = (i: number) => ({ id: i, name: `name ${i}, "quoted"`, n: i % 1000 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "datahus-cli-"));
  stack = await startStack({ FILE_SOURCE_ROOT: dir }, { worker: true });
  publisher = await stack.signup("CLI publisher", "PUBLISHER");
  const journey = publishing(stack, publisher);
  dataset = await journey.dataset([
    { name: "id", type: "INT64", nullable: false },
    { name: "name", type: "STRING", nullable: false },
    { name: "n", type: "INT32", nullable: false },
  ]);
  await journey.pipeline(await journey.source("PUSH", {}), dataset.id, "INCREMENTAL");
  const lines = ["id,name,n"];
  for (let i = 1; i <= ROWS; i++) {
    const r = row(i);
    lines.push(`${r.id},"${r.name.replaceAll('"', '""')}",${r.n}`);
  }
  await writeFile(join(dir, "rows.csv"), `${lines.join("\n")}\n`);
}, 60_000);

afterAll(async () => {
  await stack?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("datahus upload, follow, export", () => {
  it("uploads 100,000 rows in pushes, follows every run to SUCCEEDED and exports them", async () => {
    // ~4.5 MB of NDJSON in pushes of at most 2 MB: three runs, loaded in order.
    const uploaded = await datahus([
      "upload",
      join(dir, "rows.csv"),
      "--dataset",
      dataset.slug,
      "--batch-bytes",
      "2000000",
      "--follow",
    ]);
    expect(uploaded.status, uploaded.stderr).toBe(0);
    const lines = uploaded.stdout.trim().split("\n");
    const runIds = lines.filter((line) => !line.includes(" "));
    expect(runIds.length).toBeGreaterThanOrEqual(3);
    const finals = lines.filter((line) => line.includes(" "));
    expect(finals).toHaveLength(runIds.length);
    for (const [i, line] of finals.entries()) {
      expect(line).toMatch(new RegExp(`^${runIds[i]} SUCCEEDED read \\d+ written \\d+ rejected 0$`));
    }
    const read = finals.map((line) => Number(/read (\d+)/.exec(line)![1]));
    expect(read.reduce((a, b) => a + b, 0)).toBe(ROWS);
    // Progress went to stderr, not mixed into the run ids.
    expect(uploaded.stderr).toMatch(/upload \S+ 100% 100000 records/);

    const rows = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { id: dataset.rawId } });
    expect(Number(rows.rowCount)).toBe(ROWS);

    // Following a finished run again says the same, exit 0.
    const again = await datahus(["follow", runIds[0]!]);
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(`${finals[0]}\n`);

    const out = join(dir, "back.ndjson");
    const exported = await datahus(["export", dataset.slug, "--format", "ndjson", "--out", out]);
    expect(exported.status, exported.stderr).toBe(0);
    expect(exported.stdout).toMatch(new RegExp(`${ROWS} records`));
    const back = (await readFile(out, "utf8")).trim().split("\n");
    expect(back).toHaveLength(ROWS);
    const seen = new Set<number>();
    for (const line of back) {
      const record = JSON.parse(line) as { _key: string; id: string | number; name: string; n: number };
      const id = Number(record.id);
      expect({ id, name: record.name, n: Number(record.n) }).toEqual(row(id));
      seen.add(id);
    }
    expect(seen.size).toBe(ROWS);

    const csv = join(dir, "back.csv");
    const asCsv = await datahus(["export", dataset.slug, "--format", "csv", "--out", csv]);
    expect(asCsv.status, asCsv.stderr).toBe(0);
    let count = 0;
    for await (const parsed of readRecords(createReadStream(csv), { format: "CSV" })) {
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) continue;
      const id = Number(parsed.record.id);
      expect({ id, name: parsed.record.name, n: Number(parsed.record.n) }).toEqual(row(id));
      count += 1;
    }
    expect(count).toBe(ROWS);

    // Parquet: the embedded engine writes it; ClickHouse 18.16 cannot, and the CLI says so.
    const parquet = join(dir, "back.parquet");
    const asParquet = await datahus(["export", dataset.slug, "--format", "parquet", "--out", parquet]);
    if (embeddedEngine) {
      expect(asParquet.status, asParquet.stderr).toBe(0);
      let rowsInFile = 0;
      for await (const parsed of readRecords(createReadStream(parquet), { format: "PARQUET" })) {
        if (parsed.ok) rowsInFile += 1;
      }
      expect(rowsInFile).toBe(ROWS);
    } else {
      expect(asParquet.status).toBe(1);
      expect(asParquet.stderr).toMatch(/HTTP 400 .*BAD_USER_INPUT: .*cannot write "parquet"/);
    }
  }, 300_000);

  it("runs a pipeline of any source and follows it (datahus run --follow)", async () => {
    const journey = publishing(stack, publisher);
    const target = await journey.dataset([
      { name: "id", type: "INT64", nullable: false },
      { name: "name", type: "STRING", nullable: false },
      { name: "n", type: "INT32", nullable: false },
    ]);
    const pipeline = await journey.pipeline(
      await journey.source("FILE", { path: "rows.csv" }),
      target.id,
      "FULL_REFRESH",
    );
    const ran = await datahus(["run", pipeline, "--follow"]);
    expect(ran.status, ran.stderr).toBe(0);
    const [runId, final] = ran.stdout.trim().split("\n");
    expect(final).toBe(`${runId} SUCCEEDED read ${ROWS} written ${ROWS} rejected 0`);
  }, 120_000);

  it("exits 1 on a failed run, a refused key or a missing file, 2 on usage, 78 without a key", async () => {
    const bad = join(dir, "bad.ndjson");
    await writeFile(bad, '{"id": 1, "name": "one", "n": 1}\n{"id": "x", "name": "two", "n": 2}\n');
    const partly = await datahus(["upload", bad, "--dataset", dataset.slug, "--follow"]);
    // One row rejected is still a SUCCEEDED run (the default keeps going and quarantines it).
    expect(partly.status, partly.stderr).toBe(0);
    expect(partly.stdout).toMatch(/SUCCEEDED read 2 written 1 rejected 1/);

    // A pipeline that fails on fields the dataset does not have: the run FAILS, the CLI exits 1.
    const journey = publishing(stack, publisher);
    const strict = await journey.dataset([{ name: "id", type: "INT64", nullable: false }]);
    const source = await journey.source("PUSH", {});
    ok(
      await stack.graphql(
        CreatePipelineDocument,
        {
          input: {
            sourceId: source,
            datasetId: strict.id,
            name: "strict",
            mode: "INCREMENTAL",
            steps: [],
            newFieldPolicy: "FAIL",
          },
        },
        publisher.headers,
      ),
    );
    const failed = await datahus(["upload", bad, "--dataset", strict.slug, "--follow"]);
    expect(failed.status).toBe(1);
    expect(failed.stdout).toMatch(/ FAILED read \d+ written 0 rejected \d+ error: .+/);

    const refused = await datahus(["upload", bad, "--dataset", dataset.slug], {
      DATAHUS_API_KEY: "dh_wrong",
    });
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 401 .*UNAUTHENTICATED/);

    const missing = await datahus(["upload", join(dir, "nope.csv"), "--dataset", dataset.slug]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/cannot read/);

    const unknownRun = await datahus(["follow", "UGlwZWxpbmVSdW46bm9uZQ=="]);
    expect(unknownRun.status).toBe(1);

    expect((await datahus(["upload", bad])).status).toBe(2);
    expect((await datahus(["export", dataset.slug, "--format", "xml"])).status).toBe(2);
    const noKey = await datahus(["follow", "x"], { DATAHUS_API_KEY: "" });
    expect(noKey.status).toBe(78);
    expect(noKey.stderr).toMatch(/DATAHUS_API_KEY/);
  }, 120_000);
});
