// File-drop deliveries on the real stack: a buyer's SFTP and S3 deliveries, their pg-boss jobs run
// by an in-process worker, drops landing on a real sshd and s3rver. Each drop is checked as a buyer
// would: every file against the manifest (size, SHA-256, row count), and the rows against what the
// records API returns. Retries run on a schedule of seconds.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { parquetReadObjects } from "hyparquet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DropManifest } from "../../src/deliveries/drops/index.js";
import { DROP_SCHEDULE_QUEUE } from "../../src/deliveries/drop.dispatcher.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { readRecords } from "../../src/sources/formats/index.js";
import {
  CreateDatasetDocument,
  CreateDeliveryDocument,
  DeleteRecordsDocument,
  DeliveryAttemptsDocument,
  PauseDeliveryDocument,
  PublishDatasetDocument,
  PurchaseDatasetDocument,
  RecordsDocument,
  RecordsTotalDocument,
  ResumeDeliveryDocument,
  TopUpCreditsDocument,
  TriggerDeliveryDocument,
  UpdateDeliveryDocument,
  UpsertRecordsDocument,
  UsageDocument,
  type CreateDeliveryInput,
  type RecordsQuery,
  type DeliveryAttemptFieldsFragment,
} from "../generated/graphql.js";
import { readS3Folder, startS3, type TestS3 } from "../support/s3.js";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";
import { until } from "../support/wait.js";

let stack: TestStack;
let sshd: TestSshd;
let s3: TestS3;
let publisher: TestAccount;
let admin: TestAccount;
/** Every GraphQL response body of this file, for the credentials scan. */
const responses: string[] = [];

beforeAll(async () => {
  [sshd, s3] = await Promise.all([startSshd(), startS3(["drops"])]);
  stack = await startStack(
    {
      OUTBOUND_ALLOW_CIDRS: "127.0.0.0/8,::1/128",
      WEBHOOK_RETRY_SCHEDULE: "2s,2s",
      WEBHOOK_RETRY_JITTER: "0",
    },
    { worker: true },
  );
  publisher = await stack.signup("Drop publisher", "PUBLISHER");
  admin = await stack.admin();
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await Promise.all([sshd?.stop(), s3?.stop()]);
});

async function call<TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables: TVars,
  headers: Record<string, string>,
): Promise<GraphQLResponse<TData>> {
  const res = await stack.graphql(document, variables, headers);
  responses.push(JSON.stringify([res.data, res.errors]));
  return res;
}

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

const COLUMNS = [
  { name: "id", type: "INT64" },
  { name: "name", type: "STRING" },
  { name: "price", type: "DECIMAL", precision: 12, scale: 2 },
  { name: "qty", type: "INT32" },
];

const row = (i: number, tag = "") => ({
  id: String(9_007_199_254_740_993n + BigInt(i)), // past 2^53: must survive exactly
  name: `item, "${i}"${tag}`,
  price: `${i}.${String(i % 100).padStart(2, "0")}`,
  qty: i % 1000,
});

/** Credits per started 100 records of the METERED dataset: far above any plan's starting credits. */
const PRICE = 100_000;

let datasets = 0;
/** A published dataset of `count` records. */
async function dataset(count: number, access: "OPEN" | "METERED" | "PURCHASED" = "OPEN") {
  const slug = `drops_${++datasets}`;
  const created = ok(
    await call(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: slug,
          category: "tests",
          access,
          ...(access === "METERED" ? { pricePer100Records: PRICE } : {}),
          ...(access === "PURCHASED" ? { purchasePrice: 10, purchaseTerm: "ONE_TIME" } : {}),
          keyColumns: ["id"],
          columns: COLUMNS,
        } as never,
      },
      publisher.headers,
    ),
  ).createDataset;
  await upsert(
    created.id,
    Array.from({ length: count }, (_, i) => row(i)),
  );
  ok(await call(PublishDatasetDocument, { id: created.id }, publisher.headers));
  return { id: created.id, rawId: decodeGlobalId(created.id).id, slug };
}

async function upsert(datasetId: string, records: object[]) {
  ok(await call(UpsertRecordsDocument, { datasetId, records }, publisher.headers));
}

/** What the buyer reads through the API, in key order. */
async function apiRecords(buyer: TestAccount, slug: string) {
  const records: { key: string; values: Record<string, unknown> }[] = [];
  for (let after: string | null = null; ;) {
    const res: GraphQLResponse<RecordsQuery> = await call(
      RecordsDocument,
      { slug, first: 100, after },
      buyer.headers,
    );
    const page = ok(res).dataset!.records;
    records.push(...page.edges.map((e) => e.node));
    if (!page.pageInfo.hasNextPage) return records;
    after = page.pageInfo.endCursor!;
  }
}

async function delivery(
  buyer: TestAccount,
  input: Omit<CreateDeliveryInput, "datasetId">,
  datasetId: string,
) {
  const created = ok(await call(CreateDeliveryDocument, { input: { datasetId, ...input } }, buyer.headers));
  return created.createDelivery.delivery.id;
}

const sftpConfig = (folder: string) => ({
  host: sshd.host,
  port: sshd.port,
  username: sshd.username,
  folder: `${sshd.root}/${folder}`,
  hostKeyFingerprint: sshd.hostKeyFingerprint,
  timeoutMs: 5_000,
});

const s3Config = (prefix: string) => ({ endpoint: s3.endpoint, bucket: "drops", prefix });
const s3Secrets = () => ({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });

async function attempts(buyer: TestAccount, id: string): Promise<DeliveryAttemptFieldsFragment[]> {
  const data = ok(await call(DeliveryAttemptsDocument, { id, first: 50 }, buyer.headers));
  if (data.node?.__typename !== "Delivery") throw new Error(`no delivery ${id}`);
  // Newest first.
  return data.node.attempts.edges.map((e) => e.node).reverse();
}

/** Waits until `count` attempts are finished (not PENDING), and no more is running. */
async function settled(buyer: TestAccount, id: string, count: number) {
  return until(`${count} finished attempts`, async () => {
    const list = await attempts(buyer, id);
    const done = list.filter((a) => a.status !== "PENDING");
    return done.length >= count && done.length === list.length ? done : null;
  });
}

interface Landed {
  manifest: DropManifest;
  files: Map<string, Buffer>;
}

/** The drop an attempt reports, read back from where it landed. */
async function landed(attempt: DeliveryAttemptFieldsFragment): Promise<Landed> {
  expect(attempt.status, attempt.error ?? "").toBe("SUCCEEDED");
  const { manifest: location } = JSON.parse(attempt.responseExcerpt!) as { manifest: string };
  const files = new Map<string, Buffer>();
  const url = new URL(location);
  if (url.protocol === "sftp:") {
    // The test sshd serves this machine's file system: read the folder directly.
    const folder = decodeURIComponent(url.pathname).replace(/\/manifest\.json$/, "");
    for (const name of await readdir(folder)) files.set(name, await readFile(join(folder, name)));
  } else {
    const prefix = url.pathname.slice(1).replace(/manifest\.json$/, "");
    for (const [name, bytes] of await readS3Folder(s3, url.host, prefix)) files.set(name, bytes);
  }
  const manifest = JSON.parse(files.get("manifest.json")!.toString()) as DropManifest;
  // A buyer's check: exactly the listed files, each whole.
  expect([...files.keys()].sort()).toEqual([...manifest.files.map((f) => f.name), "manifest.json"].sort());
  for (const entry of manifest.files) {
    const bytes = files.get(entry.name)!;
    expect(bytes.length).toBe(entry.size);
    expect(createHash("sha256").update(bytes).digest("hex")).toBe(entry.sha256);
  }
  return { manifest, files };
}

/** The rows of a text drop, every value as text (CSV has no types). */
async function textRows({ manifest, files }: Landed) {
  const rows: Record<string, unknown>[] = [];
  for (const entry of manifest.files) {
    const format = manifest.format === "CSV" ? "CSV" : "NDJSON";
    const input = Readable.from([files.get(entry.name)!]);
    let count = 0;
    for await (const parsed of readRecords(input, { format, gzip: manifest.compression === "gzip" })) {
      if (!parsed.ok) throw new Error(parsed.reasons.join());
      rows.push(parsed.record);
      count++;
    }
    expect(count).toBe(entry.rowCount);
  }
  expect(rows).toHaveLength(manifest.rowCount);
  return rows;
}

const asText = (rows: Record<string, unknown>[]) =>
  rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, String(v)])));

/** API records as drop rows: `_key` then the values, as text. */
const expected = (records: { key: string; values: Record<string, unknown> }[]) =>
  asText(records.map((r) => ({ _key: r.key, ...r.values })));

async function buyerWith(credits: number, name: string) {
  const buyer = await stack.signup(name, "BUYER");
  if (credits > 0) {
    ok(
      await call(
        TopUpCreditsDocument,
        { accountId: buyer.accountId, amount: credits, idempotencyKey: `${name}-top-up` },
        admin.headers,
      ),
    );
  }
  return buyer;
}

async function balanceOf(buyer: TestAccount) {
  const account = await stack.app.stores.prisma.account.findUniqueOrThrow({
    where: { id: buyer.rawAccountId },
  });
  const ledger = await stack.app.stores.prisma.creditTransaction.aggregate({
    where: { accountId: buyer.rawAccountId },
    _sum: { amount: true },
  });
  return { balance: account.creditBalance, ledger: ledger._sum.amount ?? 0n };
}

describe("file-drop deliveries", () => {
  it("drops a SCHEDULE delivery as gzipped CSV on SFTP: complete, and equal to what the buyer reads", async () => {
    const buyer = await buyerWith(0, "Scheduled buyer");
    const ds = await dataset(250);
    const id = await delivery(
      buyer,
      {
        kind: "SFTP",
        config: sftpConfig("scheduled"),
        secrets: { password: sshd.password },
        format: "CSV",
        gzip: true,
        schedule: "*/5 * * * *",
        mode: "SNAPSHOT",
      },
      ds.id,
    );
    const rawId = decodeGlobalId(id).id;
    const scheduleRows = () =>
      stack.app.stores.prisma.$queryRawUnsafe<{ cron: string; data: { deliveryId: string } }[]>(
        `SELECT cron, data FROM ${stack.app.config.PGBOSS_SCHEMA}.schedule WHERE name = $1 AND key = $2`,
        DROP_SCHEDULE_QUEUE,
        rawId,
      );
    expect(await scheduleRows()).toEqual([{ cron: "*/5 * * * *", data: { deliveryId: rawId } }]);

    // The cron tick's handler, as pg-boss would call it every five minutes.
    await stack.app.services.drops.tick({ deliveryId: rawId });
    const [attempt] = await settled(buyer, id, 1);
    expect(attempt).toMatchObject({
      eventType: "dataset.drop",
      attempt: 1,
      status: "SUCCEEDED",
      error: null,
    });
    const drop = await landed(attempt!);
    expect(drop.manifest).toMatchObject({
      dataset: { id: ds.rawId, slug: ds.slug },
      version: 1,
      mode: "FULL",
      format: "CSV",
      compression: "gzip",
      rowCount: 250,
    });
    expect(drop.manifest.columns.map((c) => c.name)).toEqual(["_key", "id", "name", "price", "qty"]);
    const total = ok(await call(RecordsTotalDocument, { slug: ds.slug, first: 1 }, buyer.headers));
    expect(drop.manifest.rowCount).toBe(total.dataset!.records.totalCount);
    expect(asText(await textRows(drop))).toEqual(expected(await apiRecords(buyer, ds.slug)));

    // Paused: no schedule; resumed: back.
    ok(await call(PauseDeliveryDocument, { id }, buyer.headers));
    expect(await scheduleRows()).toEqual([]);
    ok(await call(ResumeDeliveryDocument, { id }, buyer.headers));
    expect(await scheduleRows()).toHaveLength(1);
  }, 60_000);

  it("drops Parquet on S3 when triggered, with values equal to the API's", async () => {
    const buyer = await buyerWith(0, "Parquet buyer");
    const ds = await dataset(120);
    const id = await delivery(
      buyer,
      {
        kind: "S3",
        config: s3Config("buyer-parquet"),
        secrets: s3Secrets(),
        format: "PARQUET",
        mode: "SNAPSHOT",
      },
      ds.id,
    );
    const { eventId } = ok(await call(TriggerDeliveryDocument, { id }, buyer.headers)).triggerDelivery;
    const [attempt] = await settled(buyer, id, 1);
    expect(attempt!.eventId).toBe(eventId);
    const drop = await landed(attempt!);
    expect(drop.manifest).toMatchObject({ format: "PARQUET", compression: "none", rowCount: 120 });
    const rows: Record<string, unknown>[] = [];
    for (const entry of drop.manifest.files) {
      const bytes = drop.files.get(entry.name)!;
      const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
      rows.push(...(await parquetReadObjects({ file })));
    }
    expect(typeof rows[0]!.id).toBe("bigint"); // INT64 as a 64-bit integer, not a rounded double
    expect(asText(rows)).toEqual(expected(await apiRecords(buyer, ds.slug)));

    // Triggers in a burst: each queues a drop or folds into the one waiting (CONFLICT), and the
    // drops of one delivery never overlap.
    const burst = await Promise.all(
      Array.from({ length: 4 }, () => call(TriggerDeliveryDocument, { id }, buyer.headers)),
    );
    const queued = burst.filter((res) => !res.errors).length;
    for (const res of burst.filter((r) => r.errors))
      expect(res.errors![0]!.extensions?.code).toBe("CONFLICT");
    expect(queued).toBeGreaterThanOrEqual(1);
    const all = (await settled(buyer, id, 1 + queued)).reverse();
    expect(all.map((a) => a.status)).toEqual(all.map(() => "SUCCEEDED"));
    for (let i = 1; i < all.length; i++) {
      const previousEnd = Date.parse(all[i - 1]!.createdAt) + all[i - 1]!.durationMs!;
      expect(Date.parse(all[i]!.createdAt)).toBeGreaterThanOrEqual(previousEnd - 1);
    }
  }, 60_000);

  it("drops ON_UPDATE after each dataset.updated; incremental drops hold only new and changed rows, deletions marked", async () => {
    const buyer = await buyerWith(0, "Incremental buyer");
    const ds = await dataset(50);
    const id = await delivery(
      buyer,
      {
        kind: "SFTP",
        config: sftpConfig("incremental"),
        secrets: { privateKey: sshd.privateKey },
        format: "NDJSON",
        mode: "INCREMENTAL",
      },
      ds.id,
    );
    // The same changes as Parquet on S3, where a deletion needs every column nullable.
    const parquet = await delivery(
      buyer,
      {
        kind: "S3",
        config: s3Config("incremental"),
        secrets: s3Secrets(),
        format: "PARQUET",
        mode: "INCREMENTAL",
      },
      ds.id,
    );
    // The first drop has everything (nothing was delivered yet).
    await upsert(ds.id, [row(1, " v2"), row(2, " v2")]);
    const first = await landed((await settled(buyer, id, 1))[0]!);
    expect(first.manifest).toMatchObject({ mode: "INCREMENTAL", rowCount: 50, version: 2 });
    expect(first.manifest.columns.map((c) => c.name)).toEqual([
      "_key",
      "id",
      "name",
      "price",
      "qty",
      "_deleted",
    ]);

    // A change: one row replaced, one added. The next drop holds exactly those two.
    await upsert(ds.id, [row(7, " v2"), row(50)]);
    const second = await landed((await settled(buyer, id, 2))[0]!);
    const api = await apiRecords(buyer, ds.slug);
    const changed = api.filter((r) => r.key === row(7).id || r.key === row(50).id);
    expect(changed).toHaveLength(2);
    expect(asText(await textRows(second))).toEqual(
      expected(changed).map((r) => ({ ...r, _deleted: "false" })),
    );
    expect(second.manifest.version).toBe(3);

    // A deletion travels as its key, marked.
    ok(await call(DeleteRecordsDocument, { datasetId: ds.id, keys: [{ id: row(3).id }] }, publisher.headers));
    const third = await landed((await settled(buyer, id, 3))[0]!);
    const [tombstone, ...rest] = await textRows(third);
    expect(rest).toEqual([]);
    expect(tombstone).toEqual({
      _key: row(3).id,
      id: null,
      name: null,
      price: null,
      qty: null,
      _deleted: true,
    });

    const listed = await stack.app.stores.prisma.delivery.findUniqueOrThrow({
      where: { id: decodeGlobalId(id).id },
    });
    expect(listed.lastDeliveredVersion).toBe(4);
    const deletion = await landed((await settled(buyer, parquet, 3))[0]!);
    const bytes = deletion.files.get(deletion.manifest.files[0]!.name)!;
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
    expect(await parquetReadObjects({ file })).toEqual([
      { _key: row(3).id, id: null, name: null, price: null, qty: null, _deleted: true },
    ]);
    // Nothing changed since: a drop now holds no rows (one empty part) but is complete.
    ok(await call(TriggerDeliveryDocument, { id }, buyer.headers));
    const empty = await landed((await settled(buyer, id, 4))[0]!);
    expect(empty.manifest.rowCount).toBe(0);
  }, 90_000);

  it("charges a METERED dataset's buyer the read price of the rows dropped; without credits nothing is sent or charged", async () => {
    const ds = await dataset(250, "METERED");
    const buyer = await buyerWith(400_000, "Metered buyer");
    const before = await balanceOf(buyer);
    const id = await delivery(
      buyer,
      { kind: "S3", config: s3Config("metered-rich"), secrets: s3Secrets(), format: "CSV", mode: "SNAPSHOT" },
      ds.id,
    );
    ok(await call(TriggerDeliveryDocument, { id }, buyer.headers));
    const [attempt] = await settled(buyer, id, 1);
    const drop = await landed(attempt!);
    expect(drop.manifest.rowCount).toBe(250);
    // 250 records: 3 started blocks of 100, as a read of 250 records costs.
    const cost = 3 * PRICE;
    expect(JSON.parse(attempt!.responseExcerpt!)).toMatchObject({ rowCount: 250, credits: cost });
    const after = await balanceOf(buyer);
    expect(after.balance).toBe(before.balance - BigInt(cost));
    expect(after.ledger).toBe(after.balance);
    const charges = await stack.app.stores.prisma.creditTransaction.findMany({
      where: { accountId: buyer.rawAccountId, kind: "CHARGE" },
    });
    expect(charges.map((c) => c.amount)).toEqual([-BigInt(cost)]);
    // The drop shows in the buyer's usage report beside its reads.
    const range = {
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    };
    const usage = ok(await call(UsageDocument, { ...range, groupBy: "OPERATION" }, buyer.headers));
    expect(usage.usage).toEqual([{ group: "delivery", requests: 1, records: 250, credits: cost }]);

    const poor = await buyerWith(0, "Poor buyer");
    const poorBefore = await balanceOf(poor);
    const poorId = await delivery(
      poor,
      { kind: "S3", config: s3Config("metered-poor"), secrets: s3Secrets(), format: "CSV", mode: "SNAPSHOT" },
      ds.id,
    );
    ok(await call(TriggerDeliveryDocument, { id: poorId }, poor.headers));
    const [refused] = await settled(poor, poorId, 1);
    expect(refused).toMatchObject({ status: "FAILED", nextAttemptAt: null });
    expect(refused!.error).toBe(
      `INSUFFICIENT_CREDITS: Not enough credits: this costs ${cost}, the balance is ${poorBefore.balance}; nothing was sent`,
    );
    expect(await balanceOf(poor)).toEqual(poorBefore);
    expect([...(await readS3Folder(s3, "drops", "metered-poor/")).keys()]).toEqual([]);
  }, 60_000);

  it("stops dropping a PURCHASED dataset once the purchase lapses", async () => {
    const buyer = await buyerWith(0, "Lapsing buyer");
    const ds = await dataset(10, "PURCHASED");
    ok(await call(PurchaseDatasetDocument, { datasetId: ds.id }, buyer.headers));
    const id = await delivery(
      buyer,
      { kind: "S3", config: s3Config("lapsing"), secrets: s3Secrets(), format: "NDJSON", mode: "SNAPSHOT" },
      ds.id,
    );
    ok(await call(TriggerDeliveryDocument, { id }, buyer.headers));
    expect((await landed((await settled(buyer, id, 1))[0]!)).manifest.rowCount).toBe(10);
    await stack.app.stores.prisma.purchase.updateMany({
      where: { accountId: buyer.rawAccountId, datasetId: ds.rawId },
      data: { status: "EXPIRED" },
    });
    ok(await call(TriggerDeliveryDocument, { id }, buyer.headers));
    const [refused] = await settled(buyer, id, 2);
    expect(refused).toMatchObject({
      status: "FAILED",
      nextAttemptAt: null,
      error: "FORBIDDEN: the account may no longer read this dataset",
    });
    // Routing skips it too: a dataset update queues no drop for it.
    await upsert(ds.id, [row(99)]);
    await new Promise((r) => setTimeout(r, 1500));
    expect(await attempts(buyer, id)).toHaveLength(2);
  }, 60_000);

  it("retries a drop whose server is down, into the same folder, keeping every attempt", async () => {
    const buyer = await buyerWith(0, "Retry buyer");
    const ds = await dataset(30);
    const down = await startSshd();
    await down.stop(); // its port now refuses connections
    const id = await delivery(
      buyer,
      {
        kind: "SFTP",
        config: { ...sftpConfig("retried"), port: down.port, hostKeyFingerprint: undefined },
        secrets: { password: sshd.password },
        format: "CSV",
        mode: "SNAPSHOT",
      },
      ds.id,
    );
    const { eventId } = ok(await call(TriggerDeliveryDocument, { id }, buyer.headers)).triggerDelivery;
    const [failed] = await settled(buyer, id, 1);
    expect(failed).toMatchObject({ eventId, attempt: 1, status: "FAILED" });
    expect(failed!.error).toMatch(/^SERVICE_UNAVAILABLE: /);
    expect(failed!.nextAttemptAt).not.toBeNull();
    // The server comes back (the delivery now points at a live one) before the retry is due.
    ok(await call(UpdateDeliveryDocument, { id, input: { config: sftpConfig("retried") } }, buyer.headers));
    const list = await settled(buyer, id, 2);
    expect(list.map((a) => [a.eventId, a.attempt, a.status])).toEqual([
      [eventId, 2, "SUCCEEDED"],
      [eventId, 1, "FAILED"],
    ]);
    const drop = await landed(list[0]!);
    // The retry wrote the folder the first try would have: named by the drop's first try.
    const stamp = new Date(failed!.createdAt).toISOString().replace(/[-:]/g, "");
    expect(JSON.parse(list[0]!.responseExcerpt!).manifest).toContain(`/${ds.slug}/${stamp}-v1/manifest.json`);
    expect(drop.manifest.rowCount).toBe(30);

    // A delivery whose server stays down: every try recorded, the last DEAD.
    const dead = await delivery(
      buyer,
      {
        kind: "SFTP",
        config: { ...sftpConfig("dead"), port: down.port, hostKeyFingerprint: undefined },
        secrets: { password: sshd.password },
        format: "CSV",
        mode: "SNAPSHOT",
      },
      ds.id,
    );
    ok(await call(TriggerDeliveryDocument, { id: dead }, buyer.headers));
    const tries = await settled(buyer, dead, 3);
    expect(tries.map((a) => [a.attempt, a.status])).toEqual([
      [3, "DEAD"],
      [2, "FAILED"],
      [1, "FAILED"],
    ]);
  }, 60_000);

  it("refuses private SFTP hosts and S3 endpoints, and never shows or logs credentials", async () => {
    const buyer = await buyerWith(0, "Guarded buyer");
    const ds = await dataset(1);
    const sftp = await call(
      CreateDeliveryDocument,
      {
        input: {
          datasetId: ds.id,
          kind: "SFTP",
          config: { host: "10.1.2.3", username: "u", folder: "/in" },
          secrets: { password: "x" },
          format: "CSV",
        },
      },
      buyer.headers,
    );
    expect(sftp.errors?.[0]?.extensions?.problems).toEqual([
      "config.host: 10.1.2.3 is not a public address (private); this server does not contact it",
    ]);
    const bucket = await call(
      CreateDeliveryDocument,
      {
        input: {
          datasetId: ds.id,
          kind: "S3",
          config: { endpoint: "http://169.254.169.254", bucket: "drops" },
          secrets: s3Secrets(),
          format: "CSV",
        },
      },
      buyer.headers,
    );
    expect(bucket.errors?.[0]?.extensions?.problems).toEqual([
      "config.endpoint: 169.254.169.254 is not a public address (link-local); this server does not contact it",
    ]);

    // Every response and log line of this file: no password, no private key.
    const keyBody = sshd.privateKey.split("\n")[1]!;
    for (const secret of [sshd.password, keyBody]) {
      for (const text of responses) expect(text).not.toContain(secret);
      expect(stack.logText()).not.toContain(secret);
    }
  });
});
