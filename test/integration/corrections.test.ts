// Record corrections on the real stack: a publisher upserts and deletes records of its dataset by
// key over GraphQL and REST; readers see the new values at once and never a deleted record again;
// the dataset's version, row count and a dataset.updated event follow; bad input writes nothing.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ident, sql } from "../../src/db/sql.js";
import type { DomainEvent } from "../../src/events/events.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  AggregateDocument,
  CreateDatasetDocument,
  DeleteRecordsDocument,
  RecordByKeyDocument,
  RecordsDocument,
  UpsertRecordsDocument,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let other: TestAccount;
let buyer: TestAccount;
const events: DomainEvent[] = [];

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

async function createDataset(slug: string, keyColumns: string[], columns: object[]) {
  const res = await stack.graphql(
    CreateDatasetDocument,
    { input: { slug, title: slug, category: "tests", access: "OPEN", keyColumns, columns } as never },
    publisher.headers,
  );
  return ok(res).createDataset.id;
}

const ORDERS = [
  { name: "id", type: "INT64" },
  { name: "name", type: "STRING" },
  { name: "amount", type: "DECIMAL", precision: 12, scale: 2 },
  { name: "note", type: "STRING", nullable: true },
];

async function records(slug: string) {
  const data = ok(await stack.graphql(RecordsDocument, { slug, first: 100 }, publisher.headers));
  return data.dataset!.records.edges.map((e) => e.node);
}

async function datasetRow(id: string) {
  return stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { id: decodeGlobalId(id).id } });
}

function rest(method: "PUT" | "DELETE", path: string, headers: Record<string, string>, body?: unknown) {
  return fetch(`${stack.url}${path}`, {
    method,
    headers: { ...headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

beforeAll(async () => {
  stack = await startStack();
  stack.app.services.events.addSink({ name: "test", handle: async (e) => void events.push(e) });
  publisher = await stack.signup("Correcting Publisher", "PUBLISHER");
  other = await stack.signup("Other Publisher", "PUBLISHER");
  buyer = await stack.signup("Some Buyer", "BUYER");
}, 60_000);

afterAll(async () => {
  await stack?.close();
});

describe("upsertRecords and deleteRecords", () => {
  let id: string;
  const slug = "corrected_orders";

  beforeAll(async () => {
    id = await createDataset(slug, ["id"], ORDERS);
  });

  it("writes records, then replaces one by key: readers see the new values", async () => {
    const first = ok(
      await stack.graphql(
        UpsertRecordsDocument,
        {
          datasetId: id,
          records: [
            { id: 1, name: "apple", amount: "1.50" },
            { id: "2", name: "pear", amount: 2, note: "ripe" },
            { id: 3, name: "plum", amount: "3.25", note: null },
          ],
        },
        publisher.headers,
      ),
    ).upsertRecords;
    expect(first.changedRows).toBe(3);
    expect(first.dataset).toMatchObject({ version: 1, rowCount: 3 });
    expect(first.dataset.lastUpdatedAt).toBeTruthy();

    const second = ok(
      await stack.graphql(
        UpsertRecordsDocument,
        { datasetId: id, records: [{ id: 2, name: "pear, corrected", amount: "20.00" }] },
        publisher.headers,
      ),
    ).upsertRecords;
    expect(second).toMatchObject({ changedRows: 1, dataset: { version: 2, rowCount: 3 } });

    expect(await records(slug)).toEqual([
      { key: "1", values: { id: "1", name: "apple", amount: "1.50", note: null } },
      // Replaced whole: the note it had is gone, as the new record has none.
      { key: "2", values: { id: "2", name: "pear, corrected", amount: "20.00", note: null } },
      { key: "3", values: { id: "3", name: "plum", amount: "3.25", note: null } },
    ]);
    const event = events.at(-1)!;
    expect(event).toMatchObject({
      type: "dataset.updated",
      data: {
        datasetId: decodeGlobalId(id).id,
        accountId: publisher.rawAccountId,
        version: 2,
        rowCount: 3,
        changedRows: 1,
        cause: "CORRECTION",
        runId: null,
      },
    });
  });

  it("deletes by key: the record is gone from every read, and stays gone", async () => {
    const deleted = ok(
      await stack.graphql(DeleteRecordsDocument, { datasetId: id, keys: [{ id: "1" }] }, publisher.headers),
    ).deleteRecords;
    expect(deleted).toMatchObject({ changedRows: 1, dataset: { version: 3, rowCount: 2 } });
    expect(events.at(-1)).toMatchObject({ data: { version: 3, changedRows: 1, cause: "CORRECTION" } });

    expect((await records(slug)).map((r) => r.key)).toEqual(["2", "3"]);
    // What incremental deliveries follow: a tombstone above every earlier version of the key.
    const table = (await datasetRow(id)).tableName;
    const versions = await stack.app.stores.clickhouse.query<{ _version: string; _deleted: number }>(
      sql`SELECT _version, _deleted FROM ${ident(stack.app.config.CLICKHOUSE_DATABASE, table)} WHERE _key = '1' ORDER BY _version`,
    );
    expect(versions.map((v) => v._deleted)).toEqual([0, 1]);
    expect(BigInt(versions[1]!._version)).toBeGreaterThan(BigInt(versions[0]!._version));
    const one = ok(await stack.graphql(RecordByKeyDocument, { slug, key: "1" }, publisher.headers));
    expect(one.dataset!.record).toBeNull();

    // Another write to other keys, and ClickHouse merging the parts, do not bring it back.
    ok(
      await stack.graphql(
        UpsertRecordsDocument,
        { datasetId: id, records: [{ id: 4, name: "fig", amount: "4" }] },
        publisher.headers,
      ),
    );
    await stack.app.stores.clickhouse.command(
      sql`OPTIMIZE TABLE ${ident(stack.app.config.CLICKHOUSE_DATABASE, table)} FINAL`,
    );
    expect((await records(slug)).map((r) => r.key)).toEqual(["2", "3", "4"]);
    // Nor in aggregates, counts and exports.
    const counted = ok(
      await stack.graphql(
        AggregateDocument,
        { slug, metrics: [{ fn: "COUNT" }], first: 10 },
        publisher.headers,
      ),
    );
    expect(counted.dataset!.aggregate.edges[0]!.node.metrics).toEqual({ count: 3 });
    const exported = await fetch(`${stack.url}/api/v1/data/export?dataset=${slug}&format=ndjson`, {
      headers: publisher.headers,
    });
    const lines = (await exported.text()).trim().split("\n");
    expect(lines.map((line) => (JSON.parse(line) as { _key: string })._key)).toEqual(["2", "3", "4"]);
    expect(
      ok(await stack.graphql(RecordByKeyDocument, { slug, key: "1" }, publisher.headers)).dataset!.record,
    ).toBeNull();
  });

  it("deleting keys that are not there changes nothing, not even the version", async () => {
    const before = await datasetRow(id);
    const eventsBefore = events.length;
    const res = ok(
      await stack.graphql(
        DeleteRecordsDocument,
        { datasetId: id, keys: [{ id: 1 }, { id: 999 }] },
        publisher.headers,
      ),
    ).deleteRecords;
    expect(res).toMatchObject({ changedRows: 0, dataset: { version: before.version } });
    expect(events.length).toBe(eventsBefore);
  });

  it("refuses a batch with one bad value, naming the record and column, and writes nothing", async () => {
    const before = await datasetRow(id);
    const cases: [unknown[], string, Record<string, unknown>][] = [
      [
        [
          { id: 10, name: "ok", amount: "1" },
          { id: 11, name: "bad", amount: "1.005" },
        ],
        "records[1].amount",
        { index: 1, column: "amount" },
      ],
      [
        [{ id: 12, name: "x", amount: "1", colour: "red" }],
        "records[0].colour",
        { index: 0, column: "colour" },
      ],
      [[{ id: 13, amount: "1" }], "records[0].name", { index: 0, column: "name" }],
      [[{ name: "no key", amount: "1" }], "records[0].id", { index: 0, column: "id" }],
      [[{ id: "twelve", name: "x", amount: "1" }], "records[0].id", { index: 0, column: "id" }],
      [["not an object"], "records[0]", { index: 0 }],
      [
        [
          { id: 14, name: "a", amount: "1" },
          { id: "14", name: "b", amount: "2" },
        ],
        "records[1]: repeats the key of records[0]",
        { index: 1 },
      ],
    ];
    for (const [batch, message, fields] of cases) {
      const res = await stack.graphql(
        UpsertRecordsDocument,
        { datasetId: id, records: batch },
        publisher.headers,
      );
      expect(res.errors?.[0]?.extensions, message).toMatchObject({ code: "BAD_USER_INPUT", ...fields });
      expect(res.errors?.[0]?.message).toContain(message);
    }
    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ id: 100 + i, name: "n", amount: "1" }));
    const big = await stack.graphql(
      UpsertRecordsDocument,
      { datasetId: id, records: tooMany },
      publisher.headers,
    );
    expect(big.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", max: 1000 });
    const badKey = await stack.graphql(
      DeleteRecordsDocument,
      { datasetId: id, keys: [{ id: 2, name: "x" }] },
      publisher.headers,
    );
    expect(badKey.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT", column: "name" });

    expect(await datasetRow(id)).toEqual(before);
    expect((await records(slug)).map((r) => r.key)).toEqual(["2", "3", "4"]);
  });

  it("is the publisher's (or an admin's) alone: others get NOT_FOUND, buyers FORBIDDEN", async () => {
    const before = await datasetRow(id);
    const write = { datasetId: id, records: [{ id: 2, name: "taken over", amount: "0" }] };
    const byOther = await stack.graphql(UpsertRecordsDocument, write, other.headers);
    expect(byOther.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const byBuyer = await stack.graphql(
      DeleteRecordsDocument,
      { datasetId: id, keys: [{ id: 2 }] },
      buyer.headers,
    );
    expect(byBuyer.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(await datasetRow(id)).toEqual(before);

    const admin = await stack.admin();
    const byAdmin = ok(
      await stack.graphql(DeleteRecordsDocument, { datasetId: id, keys: [{ id: 4 }] }, admin.headers),
    );
    expect(byAdmin.deleteRecords).toMatchObject({ changedRows: 1, dataset: { rowCount: 2 } });
  });
});

describe("REST PUT and DELETE /api/v1/datasets/{slug}/records/{key}", () => {
  const slug = "corrected_stock";
  let id: string;
  const path = (key: string) => `/api/v1/datasets/${slug}/records/${encodeURIComponent(key)}`;

  beforeAll(async () => {
    id = await createDataset(
      slug,
      ["store", "day"],
      [
        { name: "store", type: "STRING" },
        { name: "day", type: "DATE" },
        { name: "units", type: "INT32" },
      ],
    );
  });

  it("puts a record under a composite key, replaces it, and deletes it", async () => {
    const key = JSON.stringify(["oslo/1", "2026-01-02"]);
    const put = await rest("PUT", path(key), publisher.headers, { units: 5 });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ changedRows: 1, version: 1, rowCount: 1 });
    const again = await rest("PUT", path(key), publisher.headers, { store: "oslo/1", units: 7 });
    expect(await again.json()).toEqual({ changedRows: 1, version: 2, rowCount: 1 });
    const read = ok(await stack.graphql(RecordByKeyDocument, { slug, key }, publisher.headers));
    expect(read.dataset!.record!.values).toEqual({ store: "oslo/1", day: "2026-01-02", units: 7 });

    const removed = await rest("DELETE", path(key), publisher.headers);
    expect(removed.status).toBe(200);
    expect(await removed.json()).toEqual({ changedRows: 1, version: 3, rowCount: 0 });
    const gone = await rest("DELETE", path(key), publisher.headers);
    expect(gone.status).toBe(404);
    expect(await gone.json()).toMatchObject({ error: { code: "NOT_FOUND" } });
    expect(
      ok(await stack.graphql(RecordByKeyDocument, { slug, key }, publisher.headers)).dataset!.record,
    ).toBeNull();
  });

  it("answers 400 for a bad key, a body that contradicts the path or a bad value; 403 and 404 for others", async () => {
    const key = JSON.stringify(["bergen", "2026-01-02"]);
    const cases: [string, unknown, string][] = [
      ["not-json", { units: 1 }, "Invalid key"],
      [JSON.stringify(["bergen"]), { units: 1 }, "Invalid key"],
      [key, { store: "oslo", units: 1 }, "differ from the key in the path"],
      [key, { units: "many" }, "units"],
      [key, [1, 2], "JSON object"],
    ];
    for (const [k, body, message] of cases) {
      const res = await rest("PUT", path(k), publisher.headers, body);
      expect(res.status, message).toBe(400);
      const json = (await res.json()) as { error: { code: string; message: string } };
      expect(json.error.code).toBe("BAD_USER_INPUT");
      expect(json.error.message).toContain(message);
    }
    expect((await rest("PUT", path(key), buyer.headers, { units: 1 })).status).toBe(403);
    expect((await rest("PUT", path(key), other.headers, { units: 1 })).status).toBe(404);
    expect(
      (await rest("PUT", `/api/v1/datasets/no_such/records/1`, publisher.headers, { units: 1 })).status,
    ).toBe(404);
    expect((await rest("PUT", path(key), {}, { units: 1 })).status).toBe(401);
    expect((await datasetRow(id)).rowCount).toBe(0n);
  });
});
