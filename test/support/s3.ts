// s3rver, an S3 API on the local file system, for the S3 tests: one server per test file on a
// free loopback port, its objects in a temp folder removed on stop. s3rver knows only the access
// key below (another is refused with InvalidAccessKeyId) but does not verify V4 signatures.
import { mkdtemp, rm } from "node:fs/promises";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { S3Connection } from "../../src/transfer/s3.js";

interface S3rverInstance {
  run(): Promise<AddressInfo>;
  close(): Promise<void>;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverInstance;

// s3rver ships CommonJS without types.
const S3rver = createRequire(import.meta.url)("s3rver") as S3rverClass;

export interface TestS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  buckets: string[];
  stop(): Promise<void>;
}

export async function startS3(buckets: string[]): Promise<TestS3> {
  const directory = await mkdtemp(join(tmpdir(), "datahus-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: 0,
    silent: true,
    directory,
    // Path-style only: virtual-host buckets would need DNS names for 127.0.0.1.
    vhostBuckets: false,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    buckets,
    async stop() {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/** Every object under `prefix` in `bucket`, by its key after the prefix: what a buyer downloads. */
export async function readS3Folder(s3: TestS3, bucket: string, prefix: string): Promise<Map<string, Buffer>> {
  const connection = new S3Connection(
    { endpoint: s3.endpoint, region: s3.region, bucket, forcePathStyle: true, timeoutMs: 10_000 },
    { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  );
  const files = new Map<string, Buffer>();
  try {
    for (const object of await connection.list(prefix)) {
      files.set(
        object.key.slice(prefix.length),
        Buffer.concat(await (await connection.read(object.key)).toArray()),
      );
    }
  } finally {
    await connection.close();
  }
  return files;
}
