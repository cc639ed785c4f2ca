// Keys that spend only what they should, through the API on the real stack: a key over its daily
// limit is refused with SPEND_LIMIT_EXCEEDED (charging nothing) while the account's other keys
// still read, racing reads never overrun a limit, a dataset-scoped key is FORBIDDEN elsewhere,
// and the buyer pages through a per-request usage log.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ref } from "../../src/records/read.service.js";
import { writeRecords } from "../../src/records/records.writer.js";
import {
  BuyDatasetDocument,
  CreateDatasetDocument,
  CreateLimitedKeyDocument,
  KeySpendDocument,
  MeDocument,
  PublishDatasetDocument,
  ReadPageDocument,
  SetApiKeyLimitsDocument,
  TopUpCreditsDocument,
  UsageLogDocument,
  type CreateApiKeyInput,
  type UsageLogQuery,
} from "../generated/graphql.js";
import { ok } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let buyer: TestAccount;
let publisher: TestAccount;
const datasets: Record<string, string> = {};

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;
const balance = async () => ok(await stack.graphql(MeDocument, {}, buyer.headers)).me.account.creditBalance;

async function dataset(slug: string, input: Record<string, unknown>) {
  const created = ok(
    await stack.graphql(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: slug,
          category: "energy",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "INT64", nullable: false }],
          ...input,
        } as never,
      },
      publisher.headers,
    ),
  );
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug } });
  const rows = Array.from({ length: 30 }, (_, i) => ({ id: i + 1 }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, ref(row), rows, {
    version: 1,
    runId: "seed",
  });
  ok(await stack.graphql(PublishDatasetDocument, { id: created.createDataset.id }, publisher.headers));
  datasets[slug] = created.createDataset.id;
}

async function key(input: Omit<CreateApiKeyInput, "name">) {
  const created = ok(
    await stack.graphql(CreateLimitedKeyDocument, { input: { name: "k", ...input } }, buyer.headers),
  ).createApiKey;
  return { ...created.apiKey, headers: { "x-api-key": created.secret } };
}

const read = (slug: string, headers: Record<string, string>, first = 10) =>
  stack.graphql(ReadPageDocument, { slug, first }, headers);

beforeAll(async () => {
  stack = await startStack();
  const admin = await stack.admin();
  publisher = await stack.signup("Grid Feeds", "PUBLISHER");
  buyer = await stack.signup("Utility Co");
  await stack.graphql(
    TopUpCreditsDocument,
    { accountId: buyer.accountId, amount: 10_000, idempotencyKey: "t" },
    admin.headers,
  );
  // 10 credits per read of up to 100 records.
  await dataset("grid_load", { access: "METERED", pricePer100Records: 10 });
  await dataset("grid_prices", { access: "METERED", pricePer100Records: 10 });
  await dataset("grid_archive", { access: "PURCHASED", purchasePrice: 5, purchaseTerm: "ONE_TIME" });
});

afterAll(async () => {
  await stack?.close();
});

describe("per-key spend limits", () => {
  it("refuse a key over its daily limit with its own code, charge nothing, and leave other keys reading", async () => {
    const limited = await key({ dailySpendLimit: 25 });
    const other = await key({});
    expect(limited.dailySpendLimit).toBe(25);
    expect(ok(await read("grid_load", limited.headers)).dataset!.records.edges).toHaveLength(10);
    ok(await read("grid_prices", limited.headers));
    const before = await balance();
    const refused = await read("grid_load", limited.headers);
    expect(refused.errors?.[0]?.extensions).toMatchObject({
      code: "SPEND_LIMIT_EXCEEDED",
      period: "DAY",
      limit: 25,
      spent: 20,
      required: 10,
    });
    expect(await balance()).toBe(before);
    expect(ok(await read("grid_load", other.headers)).dataset!.records.edges).toHaveLength(10);
    expect(ok(await read("grid_load", buyer.headers)).dataset!.records.edges).toHaveLength(10);

    const spend = ok(await stack.graphql(KeySpendDocument, {}, buyer.headers)).apiKeys.edges.map(
      (e) => e.node,
    );
    expect(spend.find((k) => k.id === limited.id)?.spend).toEqual({ today: 20, thisMonth: 20 });
    expect(spend.find((k) => k.id === other.id)?.spend).toEqual({ today: 0, thisMonth: 0 });

    // Raising the limit lets it read again; purchases count too.
    ok(
      await stack.graphql(
        SetApiKeyLimitsDocument,
        { id: limited.id, limits: { dailySpendLimit: 34 } },
        buyer.headers,
      ),
    );
    ok(await read("grid_load", limited.headers));
    const buy = await stack.graphql(
      BuyDatasetDocument,
      { datasetId: datasets.grid_archive! },
      limited.headers,
    );
    expect(code(buy)).toBe("SPEND_LIMIT_EXCEEDED");
  });

  it("never lets racing reads overrun a limit: 5 of 12 concurrent 10-credit reads fit in 50", async () => {
    const limited = await key({ dailySpendLimit: 1000, monthlySpendLimit: 50 });
    const before = await balance();
    const results = await Promise.all(Array.from({ length: 12 }, () => read("grid_load", limited.headers)));
    const codes = results.map((r) => code(r) ?? "OK");
    expect(codes.filter((c) => c === "OK")).toHaveLength(5);
    expect(codes.filter((c) => c === "SPEND_LIMIT_EXCEEDED")).toHaveLength(7);
    expect(before - (await balance())).toBe(50);
    const refusal = results.find((r) => code(r))!.errors![0]!.extensions;
    expect(refusal).toMatchObject({ period: "MONTH", limit: 50 });
  });

  it("refuses limits that are no limits", async () => {
    const res = await stack.graphql(
      CreateLimitedKeyDocument,
      { input: { name: "k", dailySpendLimit: 0 } },
      buyer.headers,
    );
    expect(code(res)).toBe("BAD_USER_INPUT");
  });
});

describe("dataset-scoped keys", () => {
  it("read their datasets and get FORBIDDEN on any other", async () => {
    const scoped = await key({ datasetIds: [datasets.grid_load!] });
    expect(scoped.datasetIds).toEqual([datasets.grid_load]);
    expect(ok(await read("grid_load", scoped.headers)).dataset!.records.edges).toHaveLength(10);
    const elsewhere = await read("grid_prices", scoped.headers);
    expect(code(elsewhere)).toBe("FORBIDDEN");
    expect(
      code(await stack.graphql(BuyDatasetDocument, { datasetId: datasets.grid_archive! }, scoped.headers)),
    ).toBe("FORBIDDEN");
    // The account's own key still reads everything.
    ok(await read("grid_prices", buyer.headers));
  });

  it("cannot be limited to a dataset its account cannot see", async () => {
    const draft = ok(
      await stack.graphql(
        CreateDatasetDocument,
        {
          input: {
            slug: "grid_draft",
            title: "draft",
            category: "energy",
            access: "OPEN",
            keyColumns: ["id"],
            columns: [{ name: "id", type: "INT64", nullable: false }],
          },
        },
        publisher.headers,
      ),
    ).createDataset.id;
    const res = await stack.graphql(
      CreateLimitedKeyDocument,
      { input: { name: "k", datasetIds: [draft] } },
      buyer.headers,
    );
    expect(code(res)).toBe("NOT_FOUND");
  });
});

describe("the usage log", () => {
  it("pages through every request, newest first, with operation, dataset, records, credits, duration and key", async () => {
    const logged = await key({});
    for (const slug of ["grid_load", "grid_prices", "grid_load"]) ok(await read(slug, logged.headers, 7));
    const lines = [];
    let after: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res: UsageLogQuery = ok(
        await stack.graphql(UsageLogDocument, { first: 1, after, apiKeyId: logged.id }, buyer.headers),
      );
      lines.push(...res.usageLog.edges.map((e) => e.node));
      if (!res.usageLog.pageInfo.hasNextPage) break;
      after = res.usageLog.pageInfo.endCursor!;
    }
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).toMatchObject({
        operation: "records",
        records: 7,
        credits: 10,
        apiKey: { prefix: logged.prefix },
      });
      expect(line.durationMs).toBeGreaterThanOrEqual(0);
    }
    expect(new Set(lines.map((l) => l.requestId)).size).toBe(3);
    const times = lines.map((l) => Date.parse(l.at));
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    expect(lines.map((l) => l.dataset?.slug).sort()).toEqual(["grid_load", "grid_load", "grid_prices"]);

    const onlyPrices = ok(
      await stack.graphql(
        UsageLogDocument,
        { first: 10, apiKeyId: logged.id, datasetId: datasets.grid_prices },
        buyer.headers,
      ),
    );
    expect(onlyPrices.usageLog.edges.map((e) => e.node.dataset?.slug)).toEqual(["grid_prices"]);
    // Another account sees none of it.
    const stranger = await stack.signup("Stranger");
    const theirs = ok(
      await stack.graphql(UsageLogDocument, { first: 10, apiKeyId: logged.id }, stranger.headers),
    );
    expect(theirs.usageLog.edges).toEqual([]);
    expect(
      code(await stack.graphql(UsageLogDocument, { first: 1, after: "bm90LWEtY3Vyc29y" }, buyer.headers)),
    ).toBe("BAD_USER_INPUT");
  });
});
