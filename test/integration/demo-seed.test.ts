// `datahus seed`: the demo marketplace is readable at once with the key it prints, the example
// requests it prints work, and a second run changes nothing and prints the same key.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findProjectRoot } from "../../src/db/postgres-migrate.js";
import { ident, sql } from "../../src/db/sql.js";
import { DEMO_DATASETS } from "../../src/demo/datasets.js";
import { DEMO_FILES, toNdjson } from "../../src/demo/generate.js";
import { readNdjson, seedDemo, summary, type SeedResult } from "../../src/demo/seed.js";
import {
  DatasetBySlugDocument,
  PurchaseDatasetDocument,
  RecordsDocument,
  RecordsTotalDocument,
} from "../generated/graphql.js";
import { startStack, type TestStack } from "../support/stack.js";

const demoDir = join(findProjectRoot(), "demo");
let stack: TestStack;

async function seed(): Promise<{ result: SeedResult; output: string }> {
  let output = "";
  const { services, stores, config, log } = stack.app;
  const result = await seedDemo(services, stores, config, log, (text) => (output += text));
  return { result, output };
}

/** Everything a seed writes, counted: PostgreSQL rows and ClickHouse rows as stored (no FINAL). */
async function footprint() {
  const { prisma, clickhouse } = stack.app.stores;
  const datasets = await prisma.dataset.findMany({ orderBy: { slug: "asc" } });
  const stored = await Promise.all(
    datasets.map(async (d) => {
      const table = ident(stack.app.config.CLICKHOUSE_DATABASE, d.tableName);
      const [row] = await clickhouse.query<{ n: string }>(sql`SELECT count() AS n FROM ${table}`);
      return `${d.slug}: ${row?.n} rows, version ${d.version}, ${d.rowCount} counted, ${d.status}`;
    }),
  );
  return {
    accounts: await prisma.account.findMany({ select: { name: true, creditBalance: true } }),
    users: await prisma.user.count(),
    apiKeys: await prisma.apiKey.findMany({ select: { prefix: true, name: true, revokedAt: true } }),
    ledger: await prisma.creditTransaction.count(),
    datasets: datasets.map((d) => ({ slug: d.slug, updatedAt: d.updatedAt, lastUpdatedAt: d.lastUpdatedAt })),
    stored,
  };
}

const printedKey = (output: string) => /export DATAHUS_KEY=(\S+)/.exec(output)?.[1];

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

describe("demo seed", () => {
  let first: { result: SeedResult; output: string };

  it("creates the publisher, the buyer with credits and a key, and three published datasets", async () => {
    first = await seed();
    // Two accounts, their credits, the key, and each dataset created and loaded.
    expect(first.result.created).toHaveLength(2 + 1 + 1 + 3 * 2);
    expect(first.result.balance).toBe(10_100n); // the FREE plan's 100 and the demo's 10,000
    expect(first.result.datasets.map((d) => [d.slug, d.access, d.status])).toEqual([
      ["weather_hourly", "OPEN", "PUBLISHED"],
      ["retail_sales_daily", "METERED", "PUBLISHED"],
      ["housing_prices_ny_2024", "PURCHASED", "PUBLISHED"],
    ]);
    expect(printedKey(first.output)).toBe(first.result.apiKey);
    // The key goes to the writer only, never to the log.
    expect(stack.logText()).not.toContain(first.result.apiKey!);
  });

  it("changes nothing when run again, and prints the same key", async () => {
    const before = await footprint();
    const again = await seed();
    expect(again.result.created).toEqual([]);
    expect(again.output).toContain("already seeded; nothing changed");
    expect(printedKey(again.output)).toBe(printedKey(first.output));
    expect(await footprint()).toEqual(before);
  });

  it("serves every dataset's records to the printed key, as many as its file holds", async () => {
    const headers = { "x-api-key": printedKey(first.output)! };
    const total = (slug: string) => stack.graphql(RecordsTotalDocument, { slug, first: 1 }, headers);

    const purchased = first.result.datasets.find((d) => d.access === "PURCHASED")!;
    expect((await total(purchased.slug)).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const datasetId = /purchaseDataset\(datasetId: \\"([^\\]+)\\"/.exec(first.output)?.[1];
    const bought = await stack.graphql(PurchaseDatasetDocument, { datasetId: datasetId! }, headers);
    expect(bought.errors).toBeUndefined();

    for (const spec of DEMO_DATASETS) {
      const rows = await readNdjson(join(demoDir, spec.file));
      const catalogued = await stack.graphql(DatasetBySlugDocument, { slug: spec.input.slug }, headers);
      expect(catalogued.data?.dataset).toMatchObject({ status: "PUBLISHED", access: spec.input.access });
      const res = await total(spec.input.slug);
      expect(res.errors).toBeUndefined();
      expect(res.data?.dataset?.records.totalCount).toBe(rows.length);
      const stored = await stack.app.stores.prisma.dataset.findUniqueOrThrow({
        where: { slug: spec.input.slug },
      });
      expect({ version: stored.version, rowCount: Number(stored.rowCount) }).toEqual({
        version: 1,
        rowCount: rows.length,
      });
    }

    // Values come back as the file has them (decimals as text, nulls, dates).
    const housing = await stack.graphql(RecordsDocument, { slug: purchased.slug, first: 1 }, headers);
    const [firstSale] = await readNdjson(join(demoDir, "housing_prices_ny_2024.ndjson"));
    expect(housing.data?.dataset?.records.edges[0]?.node.values).toEqual(firstSale);
  });

  it("prints example requests that work as printed", async () => {
    // The same text, pointed at the test server's port; each request body is sent as curl would.
    const text = summary(first.result, stack.url);
    const bodies = [...text.matchAll(/-d '(.+)'$/gm)].map((m) => m[1]!);
    expect(bodies).toHaveLength(4);
    for (const body of bodies.slice(0, 3)) {
      const res = await fetch(`${stack.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": first.result.apiKey! },
        body,
      });
      const json = (await res.json()) as { data?: unknown; errors?: unknown };
      expect(json.errors, body).toBeUndefined();
      expect(json.data).toBeTruthy();
    }
    // The purchase was made above; buying again is refused as a CONFLICT, not as a malformed request.
    const res = await fetch(`${stack.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-api-key": first.result.apiKey! },
      body: bodies[3]!,
    });
    const json = (await res.json()) as { errors?: { extensions?: { code?: string } }[] };
    expect(json.errors?.[0]?.extensions?.code).toBe("CONFLICT");
  });
});

describe("demo files", () => {
  it("are what src/demo/generate.ts produces (regenerate them after changing it)", async () => {
    for (const [name, generate] of Object.entries(DEMO_FILES)) {
      expect(await readFile(join(demoDir, name), "utf8"), name).toBe(toNdjson(generate()));
    }
  });
});
