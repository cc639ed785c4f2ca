// SFTP and S3 sources over GraphQL on the real stack, against a real sshd and s3rver: settings
// validated with every problem listed, credentials never returned, shown or logged, and
// testSourceConnection reading the first records of the first matching file.
import { gzipSync } from "node:zlib";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CreateSourceDocument,
  TestSourceConnectionDocument,
  type CreateSourceMutationVariables,
} from "../generated/graphql.js";
import { startS3, type TestS3 } from "../support/s3.js";
import { startSshd, type TestSshd } from "../support/sshd.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let sshd: TestSshd;
let s3: TestS3;
const responses: string[] = [];

beforeAll(async () => {
  [stack, sshd, s3] = await Promise.all([startStack(), startSshd(), startS3(["landing"])]);
  publisher = await stack.signup("Remote Files Publisher", "PUBLISHER");
});
afterAll(async () => {
  await Promise.all([stack?.close(), sshd?.stop(), s3?.stop()]);
});

async function create(variables: CreateSourceMutationVariables) {
  const res = await stack.graphql(CreateSourceDocument, variables, publisher.headers);
  responses.push(JSON.stringify(res));
  return res;
}

async function testConnection(id: string) {
  const res = await stack.graphql(TestSourceConnectionDocument, { id }, publisher.headers);
  responses.push(JSON.stringify(res));
  expect(res.errors).toBeUndefined();
  return res.data!.testSourceConnection;
}

describe("SFTP and S3 sources over GraphQL", () => {
  it("creates an SFTP source and tests it by reading the first file, with the password kept secret", async () => {
    await sshd.put("landing/orders-1.csv.gz", gzipSync("id,total\n1,9.50\n2,3.00\n"));
    await sshd.put("landing/orders-2.csv.gz", gzipSync("id,total\n3,1.00\n"));
    const res = await create({
      input: {
        name: "Partner SFTP",
        type: "SFTP",
        config: {
          host: sshd.host,
          port: sshd.port,
          username: sshd.username,
          path: `${sshd.root}/landing/orders-*.csv.gz`,
          hostKeyFingerprint: sshd.hostKeyFingerprint,
        },
        secrets: { password: sshd.password },
      },
    });
    expect(res.errors).toBeUndefined();
    const source = (res.data as { createSource: { id: string; hasSecrets: boolean; config: object } })
      .createSource;
    expect(source.hasSecrets).toBe(true);
    expect(await testConnection(source.id)).toEqual({
      ok: true,
      message: `Read 2 record(s) from ${sshd.root}/landing/orders-1.csv.gz (2 file(s) match)`,
      sampleRecords: [
        { id: "1", total: "9.50" },
        { id: "2", total: "3.00" },
      ],
    });

    const wrong = await create({
      input: {
        name: "Wrong password",
        type: "SFTP",
        config: {
          host: sshd.host,
          port: sshd.port,
          username: sshd.username,
          path: `${sshd.root}/landing/*.csv.gz`,
        },
        secrets: { password: "Not-The-Password-123" },
      },
    });
    const refused = await testConnection(wrong.data!.createSource.id);
    expect(refused).toEqual({
      ok: false,
      message: `SFTP login to ${sshd.username}@127.0.0.1:${sshd.port} was refused: check the username, password or private key`,
      sampleRecords: null,
    });
  });

  it("refuses SFTP and S3 settings with every problem listed, and a credential put in the config", async () => {
    const sftp = await create({
      input: { name: "Bad", type: "SFTP", config: { host: "h", path: "/in/*", password: "oops-in-config" } },
    });
    expect(sftp.errors?.[0]?.extensions).toEqual({
      code: "BAD_USER_INPUT",
      problems: [
        "username: Invalid input: expected string, received undefined",
        '(root): Unrecognized key: "password"',
        "secrets.(root): password or privateKey is required",
      ],
    });
    const s3Bad = await create({
      input: { name: "Bad", type: "S3", config: { bucket: "B!" }, secrets: { accessKeyId: "only-the-id" } },
    });
    expect(s3Bad.errors?.[0]?.extensions).toEqual({
      code: "BAD_USER_INPUT",
      problems: [
        "bucket: must be a bucket name: 3-63 lower-case letters, digits, dots, hyphens",
        "secrets.secretAccessKey: is required",
      ],
    });
  });

  it("creates an S3 source and tests it against the bucket", async () => {
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    await client.send(
      new PutObjectCommand({ Bucket: "landing", Key: "events/2026/a.ndjson", Body: '{"id":1}\n{"id":2}\n' }),
    );
    client.destroy();
    const res = await create({
      input: {
        name: "Landing bucket",
        type: "S3",
        config: { endpoint: s3.endpoint, bucket: "landing", prefix: "events/", glob: "**/*.ndjson" },
        secrets: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      },
    });
    expect(res.errors).toBeUndefined();
    const id = res.data!.createSource.id;
    expect(await testConnection(id)).toEqual({
      ok: true,
      message: "Read 2 record(s) from events/2026/a.ndjson (1 file(s) match)",
      sampleRecords: [{ id: 1 }, { id: 2 }],
    });
  });

  it("never shows a credential in a response or a log line", () => {
    for (const secret of [sshd.password, "Not-The-Password-123", "oops-in-config", s3.secretAccessKey]) {
      expect(responses.join("\n")).not.toContain(secret);
      expect(stack.logText()).not.toContain(secret);
    }
  });
});
