// Column statistics in the catalogue: after each successful run the engine computes, per column,
// null counts, min/max and a distinct estimate over the live rows; a second run replaces them.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CreatePipelineDocument, DatasetColumnStatsDocument } from "../generated/graphql.js";
import { ok, publishing } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let root: string;
let publisher: TestAccount;
let pub: ReturnType<typeof publishing>;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "datahus-stats-"));
  stack = await startStack({ FILE_SOURCE_ROOT: root }, { worker: true });
  publisher = await stack.signup("Stats Publisher", "PUBLISHER");
  pub = publishing(stack, publisher);
});

afterAll(async () => {
  await stack?.close();
  await rm(root, { recursive: true, force: true });
});

async function stats(slug: string) {
  return ok(await stack.graphql(DatasetColumnStatsDocument, { slug }, publisher.headers)).dataset!;
}

describe("column statistics", () => {
  it("are computed by the engine after each run: nulls, min/max and distinct values per column", async () => {
    const dataset = await pub.dataset(
      [
        { name: "id", type: "INT32", nullable: false },
        { name: "city", type: "STRING", nullable: true },
        { name: "temp", type: "FLOAT64", nullable: true },
        { name: "day", type: "DATE", nullable: false },
      ],
      { keyColumns: ["id"] },
    );
    expect((await stats(dataset.slug)).columnStats).toBeNull();

    await writeFile(
      join(root, "obs.csv"),
      "id,city,temp,day\n1,oslo,-3.5,2026-01-02\n2,bergen,,2026-01-03\n3,oslo,4.25,2026-01-01\n4,,12,2026-02-28\n",
    );
    const source = await pub.source("FILE", { path: "obs.csv" });
    const input = { sourceId: source, datasetId: dataset.id, name: "obs", steps: [] };
    const pipelineId = ok(await stack.graphql(CreatePipelineDocument, { input }, publisher.headers))
      .createPipeline.id;
    expect((await pub.finished(await pub.run(pipelineId))).status).toBe("SUCCEEDED");

    const first = await stats(dataset.slug);
    expect(first.rowCount).toBe(4);
    expect(first.columnStatsAt).toBeTruthy();
    expect(first.columnStats).toEqual([
      { name: "id", nulls: 0, min: "1", max: "4", distinct: 4 },
      // An empty CSV field is an empty string for a STRING column, a null for a number.
      { name: "city", nulls: 0, min: "", max: "oslo", distinct: 3 },
      { name: "temp", nulls: 1, min: "-3.5", max: "12", distinct: 3 },
      { name: "day", nulls: 0, min: "2026-01-01", max: "2026-02-28", distinct: 4 },
    ]);

    // A full refresh with fewer cities: the figures follow the live rows.
    await writeFile(
      join(root, "obs.csv"),
      "id,city,temp,day\n1,oslo,1,2026-01-02\n2,oslo,,2026-01-03\n3,oslo,2,2026-01-01\n",
    );
    expect((await pub.finished(await pub.run(pipelineId))).status).toBe("SUCCEEDED");
    const second = await stats(dataset.slug);
    expect(second.columnStats!.find((c) => c.name === "city")).toEqual({
      name: "city",
      nulls: 0,
      min: "oslo",
      max: "oslo",
      distinct: 1,
    });
    expect(Date.parse(second.columnStatsAt!)).toBeGreaterThanOrEqual(Date.parse(first.columnStatsAt!));
  });
});
