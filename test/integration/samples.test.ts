// Free samples on the real stack: the publisher picks the rows (a count and a filter), anyone who
// can see the dataset reads them (anonymous callers too), they are marked as a sample, and
// reading them charges nothing and writes nothing to the ledger.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ref } from "../../src/records/read.service.js";
import { writeRecords } from "../../src/records/records.writer.js";
import {
  CreateDatasetDocument,
  DatasetSampleDocument,
  MeDocument,
  PublishDatasetDocument,
  SetDatasetSampleDocument,
} from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let datasetId: string;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

beforeAll(async () => {
  stack = await startStack();
  publisher = await stack.signup("Weather Co", "PUBLISHER");
  const created = ok(
    await stack.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug: "station_obs",
          title: "Station observations",
          category: "weather",
          access: "METERED",
          pricePer100Records: 50,
          keyColumns: ["id"],
          columns: [
            { name: "id", type: "INT64", nullable: false },
            { name: "station", type: "STRING", nullable: false },
          ],
        },
      },
      publisher.headers,
    ),
  );
  datasetId = created.createDataset.id;
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug: "station_obs" } });
  const rows = Array.from({ length: 40 }, (_, i) => ({ id: i + 1, station: ["oslo", "bergen"][i % 2] }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, ref(row), rows, {
    version: 1,
    runId: "seed",
  });
});

afterAll(async () => {
  await stack?.close();
});

describe("samples", () => {
  it("are offered by the publisher only, with a filter checked when set", async () => {
    const stranger = await stack.signup("Not The Publisher", "PUBLISHER");
    expect(
      code(await stack.graphql(SetDatasetSampleDocument, { id: datasetId, rows: 3 }, stranger.headers)),
    ).toBe("NOT_FOUND");
    const badColumn = { column: "nope", eq: "x" };
    expect(
      code(
        await stack.graphql(
          SetDatasetSampleDocument,
          { id: datasetId, rows: 3, filter: badColumn },
          publisher.headers,
        ),
      ),
    ).toBe("BAD_USER_INPUT");
    expect(
      code(await stack.graphql(SetDatasetSampleDocument, { id: datasetId, rows: 101 }, publisher.headers)),
    ).toBe("BAD_USER_INPUT");
  });

  it("charge nothing and return only the sample, to buyers and to anonymous callers", async () => {
    const buyer = await stack.signup("Forecaster");
    // Before publishing, only the publisher sees the dataset at all.
    ok(
      await stack.graphql(
        SetDatasetSampleDocument,
        { id: datasetId, rows: 4, filter: { column: "station", eq: "bergen" } },
        publisher.headers,
      ),
    );
    expect(
      ok(await stack.graphql(DatasetSampleDocument, { slug: "station_obs" }, buyer.headers)).dataset,
    ).toBeNull();
    ok(await stack.graphql(PublishDatasetDocument, { id: datasetId }, publisher.headers));

    const before = ok(await stack.graphql(MeDocument, {}, buyer.headers)).me.account.creditBalance;
    const ledgerRows = () =>
      stack.app.stores.prisma.creditTransaction.count({ where: { accountId: buyer.rawAccountId } });
    const entriesBefore = await ledgerRows();
    const res = await stack.graphql(DatasetSampleDocument, { slug: "station_obs" }, buyer.headers);
    const sample = ok(res).dataset!.sample!;
    expect(sample).toMatchObject({ isSample: true, size: 4, filter: { column: "station", eq: "bergen" } });
    // The first 4 matching rows in key order (keys are text: "10" sorts before "2").
    expect(sample.rows.map((r) => r.values)).toEqual([
      { id: "10", station: "bergen" },
      { id: "12", station: "bergen" },
      { id: "14", station: "bergen" },
      { id: "16", station: "bergen" },
    ]);
    expect(ok(await stack.graphql(MeDocument, {}, buyer.headers)).me.account.creditBalance).toBe(before);
    expect(await ledgerRows()).toBe(entriesBefore);
    expect(res.headers.get("x-credits-remaining")).not.toBe(String(before - 50));

    const anonymous = ok(await stack.graphql(DatasetSampleDocument, { slug: "station_obs" }));
    expect(anonymous.dataset!.sample!.rows).toHaveLength(4);

    // Removing the sample: nothing is offered.
    ok(await stack.graphql(SetDatasetSampleDocument, { id: datasetId, rows: null }, publisher.headers));
    expect(
      ok(await stack.graphql(DatasetSampleDocument, { slug: "station_obs" }, buyer.headers)).dataset!.sample,
    ).toBeNull();
  });
});
