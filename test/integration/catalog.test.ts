// Publishers define datasets (each with its own ClickHouse table) and move them through their
// life; buyers browse, search, filter and sort what is published.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sql } from "../../src/db/sql.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  AddDatasetColumnsDocument,
  ArchiveDatasetDocument,
  CatalogDocument,
  CategoriesDocument,
  CreateDatasetDocument,
  DatasetBySlugDocument,
  PublishDatasetDocument,
  UnpublishDatasetDocument,
  UpdateDatasetDocument,
  type CatalogQuery,
  type CreateDatasetMutationVariables,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let rival: TestAccount;
let buyer: TestAccount;

const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) =>
  res.errors?.[0]?.extensions?.code;

function input(slug: string, extra: Partial<CreateDatasetMutationVariables["input"]> = {}) {
  return {
    slug,
    title: `Title of ${slug}`,
    category: "Real Estate",
    tags: ["Housing", "NY"],
    access: "METERED" as const,
    pricePer100Records: 2,
    keyColumns: ["id"],
    columns: [
      { name: "id", type: "INT64" as const, nullable: false },
      { name: "price", type: "DECIMAL" as const, precision: 18, scale: 2, nullable: true },
      { name: "sold_at", type: "DATETIME" as const, nullable: false },
    ],
    ...extra,
  };
}

async function tableColumns(slug: string): Promise<string[]> {
  const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug } });
  const rows = await stack.app.stores.clickhouse.query<{ name: string; type: string }>(
    sql`SELECT name, type FROM system.columns WHERE database = ${stack.app.config.CLICKHOUSE_DATABASE} AND table = ${row.tableName}`,
  );
  return rows.map((r) => `${r.name} ${r.type}`);
}

beforeAll(async () => {
  stack = await startStack();
  publisher = await stack.signup("Acme Data", "PUBLISHER");
  rival = await stack.signup("Rival Data", "PUBLISHER");
  buyer = await stack.signup("Buyer");
});

afterAll(async () => {
  await stack?.close();
});

describe("creating a dataset", () => {
  it("makes a DRAFT with its own typed ClickHouse table, invisible to others until published", async () => {
    const created = await stack.graphql(
      CreateDatasetDocument,
      { input: input("housing_prices_ny_2024") },
      publisher.headers,
    );
    expect(created.errors).toBeUndefined();
    const ds = created.data!.createDataset;
    expect(ds).toMatchObject({
      status: "DRAFT",
      category: "real estate",
      tags: ["housing", "ny"],
      pricePer100Records: 2,
    });
    expect(await tableColumns("housing_prices_ny_2024")).toEqual([
      "id Int64",
      "price Nullable(Decimal(18, 2))",
      // 1900–2299 (README, "Column types"): Int64 milliseconds where the engine has no DateTime64 reaching that far.
      stack.app.stores.clickhouse.engine === "embedded" ? "sold_at DateTime64(3, 'UTC')" : "sold_at Int64",
      "_key String",
      "_version UInt64",
      // A dictionary of the runs' ids where the engine has LowCardinality (from 20; not 18.16).
      stack.app.stores.clickhouse.engine === "embedded" ? "_run_id LowCardinality(String)" : "_run_id String",
      "_ingested_at DateTime",
      "_deleted UInt8",
    ]);

    const hidden = await stack.graphql(
      DatasetBySlugDocument,
      { slug: "housing_prices_ny_2024" },
      buyer.headers,
    );
    expect(hidden.data?.dataset).toBeNull();
    await stack.graphql(PublishDatasetDocument, { id: ds.id }, publisher.headers);
    const seen = await stack.graphql(
      DatasetBySlugDocument,
      { slug: "housing_prices_ny_2024" },
      buyer.headers,
    );
    expect(seen.data?.dataset?.id).toBe(ds.id);
    const anonymous = await stack.graphql(DatasetBySlugDocument, { slug: "housing_prices_ny_2024" });
    expect(anonymous.data?.dataset?.slug).toBe("housing_prices_ny_2024");
  });

  it("refuses a taken slug without leaving a table behind", async () => {
    const before = await stack.app.stores.clickhouse.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.tables WHERE database = ${stack.app.config.CLICKHOUSE_DATABASE}`,
    );
    const again = await stack.graphql(
      CreateDatasetDocument,
      { input: input("housing_prices_ny_2024") },
      rival.headers,
    );
    expect(code(again)).toBe("CONFLICT");
    const after = await stack.app.stores.clickhouse.query<{ n: string }>(
      sql`SELECT count() AS n FROM system.tables WHERE database = ${stack.app.config.CLICKHOUSE_DATABASE}`,
    );
    expect(after).toEqual(before);
  });

  it("refuses bad slugs, schemas and prices with the problems listed", async () => {
    const cases: [string, Partial<CreateDatasetMutationVariables["input"]>][] = [
      ["Bad Slug", {}],
      ["ok_slug_1", { keyColumns: ["missing"] }],
      ["ok_slug_2", { columns: [{ name: "id", type: "INT64", nullable: true }] }],
      [
        "ok_slug_3",
        { columns: [{ name: "Id; DROP", type: "STRING", nullable: false }], keyColumns: ["Id; DROP"] },
      ],
      ["ok_slug_4", { columns: [{ name: "id", type: "DECIMAL", precision: 99, nullable: false }] }],
      ["ok_slug_5", { access: "PURCHASED" }],
      ["ok_slug_6", { access: "METERED", pricePer100Records: 0 }],
    ];
    for (const [slug, extra] of cases) {
      const res = await stack.graphql(
        CreateDatasetDocument,
        { input: input(slug, extra) },
        publisher.headers,
      );
      expect(code(res), slug).toBe("BAD_USER_INPUT");
    }
  });

  it("is for publishers", async () => {
    const res = await stack.graphql(CreateDatasetDocument, { input: input("buyer_made") }, buyer.headers);
    expect(code(res)).toBe("FORBIDDEN");
  });
});

describe("changing a dataset", () => {
  it("updates metadata and price, only for its publisher", async () => {
    const { data } = await stack.graphql(
      CreateDatasetDocument,
      { input: input("editable") },
      publisher.headers,
    );
    const id = data!.createDataset.id;
    const updated = await stack.graphql(
      UpdateDatasetDocument,
      { id, input: { title: "Edited", access: "PURCHASED", purchasePrice: 500, purchaseTerm: "MONTHLY" } },
      publisher.headers,
    );
    expect(updated.data?.updateDataset).toMatchObject({
      title: "Edited",
      access: "PURCHASED",
      pricePer100Records: 0,
      purchasePrice: 500,
      purchaseTerm: "MONTHLY",
    });
    const foreign = await stack.graphql(
      UpdateDatasetDocument,
      { id, input: { title: "Hijacked" } },
      rival.headers,
    );
    expect(code(foreign)).toBe("NOT_FOUND");
    const row = await stack.app.stores.prisma.dataset.findUniqueOrThrow({
      where: { id: decodeGlobalId(id).id },
    });
    expect(row.title).toBe("Edited");
  });

  it("adds nullable columns and refuses every other schema change", async () => {
    const { data } = await stack.graphql(
      CreateDatasetDocument,
      { input: input("growing") },
      publisher.headers,
    );
    const id = data!.createDataset.id;
    const added = await stack.graphql(
      AddDatasetColumnsDocument,
      { id, columns: [{ name: "rooms", type: "INT32", nullable: true }] },
      publisher.headers,
    );
    expect(added.data?.addDatasetColumns.columns.map((c) => c.name)).toEqual([
      "id",
      "price",
      "sold_at",
      "rooms",
    ]);
    expect(await tableColumns("growing")).toContain("rooms Nullable(Int32)");

    const retype = await stack.graphql(
      AddDatasetColumnsDocument,
      { id, columns: [{ name: "price", type: "STRING", nullable: true }] },
      publisher.headers,
    );
    expect(code(retype)).toBe("BAD_USER_INPUT");
    expect(retype.errors?.[0]?.message).toMatch(/already exist/);
    const required = await stack.graphql(
      AddDatasetColumnsDocument,
      { id, columns: [{ name: "floor", type: "INT32", nullable: false }] },
      publisher.headers,
    );
    expect(required.errors?.[0]?.message).toMatch(/must be nullable/);
  });

  it("moves through publish, unpublish and archive, and no further", async () => {
    const { data } = await stack.graphql(
      CreateDatasetDocument,
      { input: input("lifecycle") },
      publisher.headers,
    );
    const id = data!.createDataset.id;
    expect(code(await stack.graphql(UnpublishDatasetDocument, { id }, publisher.headers))).toBe("CONFLICT");
    expect(
      (await stack.graphql(PublishDatasetDocument, { id }, publisher.headers)).data?.publishDataset.status,
    ).toBe("PUBLISHED");
    expect(
      (await stack.graphql(UnpublishDatasetDocument, { id }, publisher.headers)).data?.unpublishDataset
        .status,
    ).toBe("UNPUBLISHED");
    expect(
      (await stack.graphql(DatasetBySlugDocument, { slug: "lifecycle" }, buyer.headers)).data?.dataset,
    ).toBeNull();
    expect(
      (await stack.graphql(ArchiveDatasetDocument, { id }, publisher.headers)).data?.archiveDataset.status,
    ).toBe("ARCHIVED");
    expect(code(await stack.graphql(PublishDatasetDocument, { id }, publisher.headers))).toBe("CONFLICT");
  });
});

describe("browsing the catalogue", () => {
  const slugs = (res: GraphQLResponse<CatalogQuery>) => res.data!.datasets.edges.map((e) => e.node.slug);

  beforeAll(async () => {
    const titles = [
      "Zebra crossings",
      "Apple prices",
      "Mango imports",
      "Apple prices",
      "Banana exports",
      "Apple prices",
    ];
    for (const [i, title] of titles.entries()) {
      const owner = i % 2 ? rival : publisher;
      const { data } = await stack.graphql(
        CreateDatasetDocument,
        {
          input: input(`fruit_${i}`, {
            title,
            category: i < 3 ? "Food" : "Trade",
            tags: i === 4 ? ["tropical"] : [],
          }),
        },
        owner.headers,
      );
      await stack.graphql(PublishDatasetDocument, { id: data!.createDataset.id }, owner.headers);
    }
  });

  it("sorts by title (ties by creation) and pages both ways without gap or duplicate", async () => {
    const all = await stack.graphql(CatalogDocument, { first: 100, category: "food", orderBy: "TITLE" });
    const trade = await stack.graphql(CatalogDocument, { first: 100, category: "trade", orderBy: "TITLE" });
    expect(slugs(all)).toEqual(["fruit_1", "fruit_2", "fruit_0"]);
    expect(slugs(trade)).toEqual(["fruit_3", "fruit_5", "fruit_4"]);

    const forward: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res: GraphQLResponse<CatalogQuery> = await stack.graphql(CatalogDocument, {
        first: 2,
        after,
        search: "fruit",
        orderBy: "TITLE",
      });
      forward.push(...slugs(res));
      if (!res.data!.datasets.pageInfo.hasNextPage) break;
      after = res.data!.datasets.pageInfo.endCursor;
    }
    const titled = await stack.graphql(CatalogDocument, { first: 100, orderBy: "TITLE" });
    const fruitsByTitle = slugs(titled).filter((s) => s.startsWith("fruit_"));
    expect(fruitsByTitle).toEqual(["fruit_1", "fruit_3", "fruit_5", "fruit_4", "fruit_2", "fruit_0"]);

    const backward: string[] = [];
    let before: string | null = null;
    for (;;) {
      const res: GraphQLResponse<CatalogQuery> = await stack.graphql(CatalogDocument, {
        last: 4,
        before,
        orderBy: "TITLE",
      });
      backward.unshift(...slugs(res));
      if (!res.data!.datasets.pageInfo.hasPreviousPage) break;
      before = res.data!.datasets.pageInfo.startCursor;
    }
    expect(backward).toEqual(slugs(titled));
    expect(new Set(backward).size).toBe(backward.length);
  });

  it("searches titles, descriptions and tags, and filters by publisher", async () => {
    expect(slugs(await stack.graphql(CatalogDocument, { first: 10, search: "APPLE" }))).toEqual([
      "fruit_1",
      "fruit_3",
      "fruit_5",
    ]);
    expect(slugs(await stack.graphql(CatalogDocument, { first: 10, search: "tropical" }))).toEqual([
      "fruit_4",
    ]);
    const byRival = await stack.graphql(CatalogDocument, {
      first: 100,
      publisher: rival.email ? "rival-data" : "",
    });
    expect(new Set(byRival.data!.datasets.edges.map((e) => e.node.publisher?.slug))).toEqual(
      new Set(["rival-data"]),
    );
    expect(slugs(await stack.graphql(CatalogDocument, { first: 10, publisher: "nobody" }))).toEqual([]);
  });

  it("shows publishers their own drafts on request, and nobody else's", async () => {
    await stack.graphql(CreateDatasetDocument, { input: input("acme_draft") }, publisher.headers);
    const own = await stack.graphql(CatalogDocument, { first: 100, status: "DRAFT" }, publisher.headers);
    expect(slugs(own)).toContain("acme_draft");
    const other = await stack.graphql(CatalogDocument, { first: 100, status: "DRAFT" }, rival.headers);
    expect(slugs(other)).not.toContain("acme_draft");
  });

  it("counts published datasets per category", async () => {
    const res = await stack.graphql(CategoriesDocument, {});
    expect(res.data?.categories).toEqual(
      expect.arrayContaining([
        { name: "food", datasetCount: 3 },
        { name: "trade", datasetCount: 3 },
      ]),
    );
  });
});
