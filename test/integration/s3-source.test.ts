// The S3 source and client against s3rver on loopback: prefix and glob, formats, incremental
// syncs by ETag, credentials, multipart uploads.
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { gzipSync } from "node:zlib";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import { S3Connection } from "../../src/transfer/s3.js";
import { collect, connectorContext } from "../support/connector-context.js";
import { startS3, type TestS3 } from "../support/s3.js";

let s3: TestS3;
let client: S3Client;
const source = connectorFor("S3")!;

beforeAll(async () => {
  s3 = await startS3(["src-bucket", "empty-bucket"]);
  client = new S3Client({
    endpoint: s3.endpoint,
    region: s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  });
});
afterAll(async () => {
  client?.destroy();
  await s3?.stop();
});

const put = (key: string, body: string | Buffer) =>
  client.send(new PutObjectCommand({ Bucket: "src-bucket", Key: key, Body: body }));
const config = (extra: Record<string, unknown> = {}) => ({
  endpoint: s3.endpoint,
  bucket: "src-bucket",
  ...extra,
});
const secrets = () => ({ accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
const okRecords = (rows: Awaited<ReturnType<typeof collect>>): Record<string, unknown>[] =>
  rows.flatMap((row) => (row.ok ? [{ ...row.record, origin: row.origin }] : []));

describe("S3 source", () => {
  it("reads the objects under the prefix that match the glob, in key order, with bad rows quarantined", async () => {
    const parquet = Buffer.from(
      parquetWriteBuffer({ columnData: [{ name: "id", data: [5, 6], type: "INT32" }] }),
    );
    await put("mixed/a.csv", "id\n1\n2\n");
    await put("mixed/b.ndjson.gz", gzipSync('{"id":3}\n[1]\n'));
    await put("mixed/c.parquet", parquet);
    await put("mixed/deep/d.csv", "id\n7\n");
    await put("other/e.csv", "id\n8\n");

    const rows = await collect(
      source.read(
        connectorContext(config({ prefix: "mixed/", glob: "*.{csv,ndjson.gz,parquet}" }), secrets()),
      ),
    );
    expect(okRecords(rows)).toEqual([
      { id: "1", origin: "mixed/a.csv" },
      { id: "2", origin: "mixed/a.csv" },
      { id: 3, origin: "mixed/b.ndjson.gz" },
      { id: 5, origin: "mixed/c.parquet" },
      { id: 6, origin: "mixed/c.parquet" },
    ]);
    expect(rows.filter((row) => !row.ok)).toEqual([
      {
        ok: false,
        rowNumber: 2,
        raw: "[1]",
        reasons: ["expected a JSON object, found array"],
        origin: "mixed/b.ndjson.gz",
      },
    ]);

    const deep = await collect(
      source.read(connectorContext(config({ prefix: "mixed/", glob: "**/*.csv" }), secrets())),
    );
    expect(okRecords(deep).map((r) => r.origin)).toEqual(["mixed/a.csv", "mixed/a.csv", "mixed/deep/d.csv"]);
  });

  it("remembers ETags so an incremental sync reads only new or rewritten objects", async () => {
    await put("inc/1.csv", "id\n1\n");
    await put("inc/2.csv", "id\n2\n");
    const settings = config({ prefix: "inc/" });
    const first = source.read(connectorContext(settings, secrets(), { mode: "INCREMENTAL" }));
    expect(okRecords(await collect(first)).map((r) => r.id)).toEqual(["1", "2"]);
    const checkpoint = first.checkpoint() as { files: Record<string, { etag: string }> };
    expect(Object.keys(checkpoint.files)).toEqual(["inc/1.csv", "inc/2.csv"]);
    expect(checkpoint.files["inc/1.csv"]!.etag).toMatch(/^[0-9a-f]{32}$/);

    await put("inc/2.csv", "id\n2b\n");
    await put("inc/3.csv", "id\n3\n");
    const second = source.read(connectorContext(settings, secrets(), { mode: "INCREMENTAL", checkpoint }));
    expect(await second.totalBytes!()).toBe(11);
    expect(okRecords(await collect(second)).map((r) => r.id)).toEqual(["2b", "3"]);
    const third = source.read(
      connectorContext(settings, secrets(), { mode: "INCREMENTAL", checkpoint: second.checkpoint() }),
    );
    expect(await collect(third)).toEqual([]);
  });

  // s3rver knows one access key and does not verify V4 signatures, so the wrong credential here
  // is the key id; AWS answers a wrong secret with SignatureDoesNotMatch, translated the same way.
  it("refuses unknown credentials with a message naming the bucket, not the credentials", async () => {
    const wrong = "definitely-not-the-secret";
    const error = await collect(
      source.read(connectorContext(config(), { accessKeyId: "AKIAWRONGKEY", secretAccessKey: wrong })),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    expect((error as AppError).message).toBe(
      `S3 refused listing / in s3://src-bucket at ${s3.endpoint}: check accessKeyId, secretAccessKey and the bucket policy`,
    );
    expect((error as AppError).message).not.toContain(wrong);
    expect((error as AppError).message).not.toContain("AKIAWRONGKEY");
  });

  it("says when the bucket does not exist or the endpoint does not answer", async () => {
    const missing = await collect(
      source.read(connectorContext(config({ bucket: "no-such-bucket" }), secrets())),
    ).catch((e: unknown) => e);
    expect((missing as AppError).message).toBe(
      `The bucket s3://no-such-bucket at ${s3.endpoint} does not exist`,
    );
    const down = await collect(
      source.read(connectorContext(config({ endpoint: "http://127.0.0.1:1", timeoutMs: 2_000 }), secrets())),
    ).catch((e: unknown) => e);
    expect((down as AppError).code).toBe("SERVICE_UNAVAILABLE");
    expect((down as AppError).message).toMatch(
      /^Cannot complete S3 listing \/ in s3:\/\/src-bucket at http:\/\/127.0.0.1:1/,
    );
  });

  it("lists every problem with the settings", () => {
    expect(
      source.validate({ bucket: "A", endpoint: "ftp://x", secretAccessKey: "s" }, { accessKeyId: "k" }),
    ).toEqual([
      "endpoint: must be an http or https URL",
      "bucket: must be a bucket name: 3-63 lower-case letters, digits, dots, hyphens",
      '(root): Unrecognized key: "secretAccessKey"',
      "secrets.secretAccessKey: is required",
    ]);
    expect(source.validate({ bucket: "abc", glob: "data/*" }, secrets())).toEqual([
      "format: is required when the file pattern does not end in .csv, .tsv, .json, .ndjson or .parquet",
    ]);
    expect(source.validate({ bucket: "abc", glob: "data/*", format: "NDJSON" }, secrets())).toEqual([]);
  });

  it("samples the first object, and reports an empty prefix as connected with no files", async () => {
    await put("sample/x.csv", "id\n1\n2\n");
    const sample = await source.sample(connectorContext(config({ prefix: "sample/" }), secrets()), 5);
    expect(sample).toEqual({
      message: "Read 2 record(s) from sample/x.csv (1 file(s) match)",
      records: [{ id: "1" }, { id: "2" }],
    });
    const empty = await source.sample(
      connectorContext(config({ bucket: "empty-bucket", glob: "*.csv" }), secrets()),
      5,
    );
    expect(empty).toEqual({ message: "Connected; no file matches s3://empty-bucket/*.csv yet", records: [] });
  });
});

describe("S3 client writes", () => {
  it("uploads in parts and reads back the same bytes, with their SHA-256", async () => {
    const connection = new S3Connection(
      {
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: "src-bucket",
        forcePathStyle: true,
        timeoutMs: 10_000,
      },
      secrets(),
    );
    try {
      // 12 MiB: three parts of S3's minimum 5 MiB.
      const chunk = Buffer.alloc(1024 * 1024, "x");
      const result = await connection.write(
        "big/blob.bin",
        (async function* () {
          for (let i = 0; i < 12; i++) yield chunk;
        })(),
      );
      expect(result.bytes).toBe(12 * 1024 * 1024);
      const back = Buffer.concat(await (await connection.read("big/blob.bin")).toArray());
      expect(back.length).toBe(12 * 1024 * 1024);
      const { createHash } = await import("node:crypto");
      expect(createHash("sha256").update(back).digest("hex")).toBe(result.sha256);
      const [object] = await connection.list("big/");
      expect(object).toMatchObject({ key: "big/blob.bin", size: 12 * 1024 * 1024 });
    } finally {
      await connection.close();
    }
  });
});
