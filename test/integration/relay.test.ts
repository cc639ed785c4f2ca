// The graph skeleton end to end: Relay paging, node resolution, error codes and masking, over
// HTTP against the real app.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DatasetsBackwardDocument,
  DatasetsForwardDocument,
  DatasetsWithPublisherDocument,
  NodeByIdDocument,
  NodesByIdsDocument,
  SalesPageDocument,
  type DatasetsBackwardQuery,
  type DatasetsForwardQuery,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestStack } from "../support/stack.js";

const DATASETS = 250;
let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
  const prisma = stack.app.stores.prisma;
  const plan = await prisma.plan.findUniqueOrThrow({ where: { code: "FREE" } });
  const publisher = await prisma.account.create({
    data: { name: "Acme Data", slug: "acme", planId: plan.id },
  });
  // Created one by one so that ids (UUIDv7) and creation order agree, as in production.
  for (let i = 0; i < DATASETS; i++) {
    await prisma.dataset.create({
      data: {
        accountId: publisher.id,
        slug: `ds_${String(i).padStart(3, "0")}`,
        title: `Dataset ${i}`,
        category: "test",
        columns: [{ name: "id", type: "STRING", nullable: false }],
        keyColumns: ["id"],
        status: "PUBLISHED",
        tableName: `ds_${i}`,
      },
    });
  }
  // A draft must never be listed to an anonymous caller.
  await prisma.dataset.create({
    data: {
      accountId: publisher.id,
      slug: "draft",
      title: "Draft",
      category: "test",
      columns: [],
      keyColumns: [],
      status: "DRAFT",
      tableName: "draft",
    },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const expectedSlugs = Array.from({ length: DATASETS }, (_, i) => `ds_${String(i).padStart(3, "0")}`);

describe("datasets connection", () => {
  it("pages forward with first/after without gap or duplicate", async () => {
    const slugs: string[] = [];
    let after: string | null = null;
    let pages = 0;
    for (;;) {
      const res: GraphQLResponse<DatasetsForwardQuery> = await stack.graphql(DatasetsForwardDocument, {
        first: 40,
        after,
      });
      expect(res.errors).toBeUndefined();
      const page = res.data!.datasets;
      slugs.push(...page.edges.map((e) => e.node.slug));
      expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
      expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
      pages++;
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    expect(pages).toBe(7);
    expect(slugs).toEqual(expectedSlugs);
  });

  it("pages backward with last/before without gap or duplicate", async () => {
    const slugs: string[] = [];
    let before: string | null = null;
    for (;;) {
      const res: GraphQLResponse<DatasetsBackwardQuery> = await stack.graphql(DatasetsBackwardDocument, {
        last: 33,
        before,
      });
      expect(res.errors).toBeUndefined();
      const page = res.data!.datasets;
      slugs.unshift(...page.edges.map((e) => e.node.slug));
      expect(page.pageInfo.hasNextPage).toBe(before !== null);
      if (!page.pageInfo.hasPreviousPage) break;
      before = page.pageInfo.startCursor;
    }
    expect(slugs).toEqual(expectedSlugs);
  });

  it("turns around: before the first cursor of a forward page gives the page before it", async () => {
    const first = await stack.graphql(DatasetsForwardDocument, { first: 10 });
    const second = await stack.graphql(DatasetsForwardDocument, {
      first: 10,
      after: first.data!.datasets.pageInfo.endCursor,
    });
    const back = await stack.graphql(DatasetsBackwardDocument, {
      last: 10,
      before: second.data!.datasets.pageInfo.startCursor,
    });
    expect(back.data!.datasets.edges.map((e) => e.node.slug)).toEqual(expectedSlugs.slice(0, 10));
    expect(back.data!.datasets.pageInfo).toMatchObject({ hasPreviousPage: false, hasNextPage: true });
  });

  it("resolves the publisher of a whole page through one batched loader", async () => {
    const res = await stack.graphql(DatasetsWithPublisherDocument, { first: 100 });
    expect(res.errors).toBeUndefined();
    const names = new Set(res.data!.datasets.edges.map((e) => e.node.publisher?.name));
    expect([...names]).toEqual(["Acme Data"]);
  });

  it("rejects a forged cursor with BAD_USER_INPUT", async () => {
    const forged = Buffer.from(JSON.stringify([1, "not-a-uuid"])).toString("base64url");
    for (const after of [forged, "%%%", Buffer.from("[2,1]").toString("base64url")]) {
      const res = await stack.graphql(DatasetsForwardDocument, { first: 5, after });
      expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
      expect(res.data).toBeNull();
    }
  });

  it("rejects a page size above the maximum", async () => {
    const res = await stack.graphql(DatasetsForwardDocument, { first: 100_000 });
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", max: 100 });
  });
});

describe("node and nodes", () => {
  it("resolves every id returned by the connection", async () => {
    const edges: { node: { id: string; slug: string } }[] = [];
    let after: string | null = null;
    do {
      const res: GraphQLResponse<DatasetsForwardQuery> = await stack.graphql(DatasetsForwardDocument, {
        first: 100,
        after,
      });
      edges.push(...res.data!.datasets.edges);
      after = res.data!.datasets.pageInfo.hasNextPage ? res.data!.datasets.pageInfo.endCursor : null;
    } while (after);
    expect(edges).toHaveLength(DATASETS);

    for (let i = 0; i < edges.length; i += 100) {
      const chunk = edges.slice(i, i + 100);
      const nodes = await stack.graphql(NodesByIdsDocument, { ids: chunk.map((e) => e.node.id) });
      expect(nodes.errors).toBeUndefined();
      expect(nodes.data!.nodes).toEqual(
        chunk.map((e) => ({ __typename: "Dataset", id: e.node.id, slug: e.node.slug })),
      );
    }
    for (const edge of edges) {
      const one = await stack.graphql(NodeByIdDocument, { id: edge.node.id });
      expect(one.data!.node).toEqual({ __typename: "Dataset", id: edge.node.id, slug: edge.node.slug });
    }
  });

  it("returns null for a well-formed id that does not exist or is out of scope", async () => {
    const missing = Buffer.from("Dataset:0190a000-0000-7000-8000-000000000000").toString("base64");
    const draft = await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug: "draft" } });
    const hidden = Buffer.from(`Dataset:${draft.id}`).toString("base64");
    const res = await stack.graphql(NodesByIdsDocument, { ids: [missing, hidden] });
    expect(res.errors).toBeUndefined();
    expect(res.data!.nodes).toEqual([null, null]);
  });

  it("rejects a forged id with BAD_USER_INPUT", async () => {
    for (const id of ["garbage", Buffer.from("Dataset:1 OR 1=1").toString("base64"), ""]) {
      const res = await stack.graphql(NodeByIdDocument, { id });
      expect(res.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    }
  });
});

describe("internal failures", () => {
  it("are masked with a request id and logged whole", async () => {
    // A real failure below the API: the table behind `sales` disappears.
    const buyer = await stack.signup("Masked Buyer");
    await stack.app.stores.prisma.$executeRawUnsafe('DROP TABLE "sales"');
    const res = await stack.graphql(SalesPageDocument, { first: 5 }, buyer.headers);
    const error = res.errors?.[0];
    expect(error?.message).toBe("Internal server error");
    expect(error?.extensions?.code).toBe("INTERNAL_SERVER_ERROR");
    const requestId = error?.extensions?.requestId;
    expect(requestId).toEqual(res.headers.get("x-request-id"));
    expect(Object.keys(error?.extensions ?? {}).sort()).toEqual(["code", "requestId"]);
    expect(JSON.stringify(res.errors)).not.toMatch(/does not exist|relation|SELECT|prisma|\.ts:\d|stack/i);

    const logged = stack.logs.find(
      (l) => l.reqId === requestId && l.msg === "unexpected error in GraphQL operation",
    );
    expect(logged).toBeDefined();
    expect(JSON.stringify(logged)).toMatch(/sales/);
  });
});
