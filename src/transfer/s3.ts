// A small S3 client for sources (list, read) and file drops (multipart upload), over
// @aws-sdk/client-s3. Path-style addressing when an endpoint is given, so MinIO, R2, Ceph and
// s3rver work like AWS. Failures become AppErrors naming the bucket, never a credential.
// The SDK loads at a connection's first call: a worker with no S3 source or drop never holds it
// (issue 13: ~5 MiB).
import type { LookupFunction } from "node:net";
import type { S3Client } from "@aws-sdk/client-s3";
import type { Readable } from "node:stream";
import picomatch from "picomatch";
import { AppError } from "../errors.js";
import {
  abortError,
  guardStream,
  isAbortError,
  meteredUpload,
  withDeadline,
  type TransferOptions,
} from "./deadline.js";

export interface S3Location {
  /** For S3-compatible stores (MinIO, R2, …); unset means AWS. */
  endpoint?: string;
  region: string;
  bucket: string;
  /** `https://host/bucket/key` instead of `https://bucket.host/key`. */
  forcePathStyle: boolean;
  /** Connecting, and each stall while sending or receiving. */
  timeoutMs: number;
}

/** Never logged. */
export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface RemoteObject {
  key: string;
  size: number;
  /** As S3 reports it, quotes removed; changes whenever the object's content does. */
  etag: string;
  lastModified: number;
}

/** Parts of a multipart upload: S3's minimum, so memory stays at a few of them. */
const PART_SIZE = 5 * 1024 * 1024;

type S3Sdk = typeof import("@aws-sdk/client-s3");

export class S3Connection {
  private client: Promise<S3Client> | undefined;
  /** Set once the SDK is loaded: `translate` recognises its exceptions by it. */
  private sdk: S3Sdk | undefined;

  constructor(
    private readonly location: S3Location,
    private readonly credentials: S3Credentials,
    private readonly options: TransferOptions & {
      /** Pins the endpoint's name to addresses already checked (src/net/outbound.ts). */
      lookup?: LookupFunction | undefined;
    } = {},
  ) {
    if (!credentials.accessKeyId || !credentials.secretAccessKey) {
      throw new AppError("BAD_USER_INPUT", "S3 needs accessKeyId and secretAccessKey");
    }
  }

  private s3(): Promise<S3Client> {
    this.client ??= import("@aws-sdk/client-s3").then((sdk) => {
      this.sdk = sdk;
      const { location, credentials, options } = this;
      return new sdk.S3Client({
        region: location.region,
        endpoint: location.endpoint,
        forcePathStyle: location.forcePathStyle,
        credentials: {
          accessKeyId: credentials.accessKeyId,
          secretAccessKey: credentials.secretAccessKey,
          sessionToken: credentials.sessionToken,
        },
        maxAttempts: 3,
        requestHandler: {
          connectionTimeout: location.timeoutMs,
          socketTimeout: location.timeoutMs,
          ...(options.lookup
            ? { httpAgent: { lookup: options.lookup }, httpsAgent: { lookup: options.lookup } }
            : {}),
        },
      });
    });
    return this.client;
  }

  /** Proves the bucket exists and the credentials open it. */
  async check(): Promise<void> {
    await this.call("opening the bucket", (client, abortSignal, { HeadBucketCommand }) =>
      client.send(new HeadBucketCommand({ Bucket: this.location.bucket }), { abortSignal }),
    );
  }

  /**
   * Objects under `prefix` whose key, relative to the prefix, matches `glob` (picomatch: `*`
   * stays within one `/` level, `**` crosses them). Sorted by key; "folder" markers skipped.
   */
  async list(prefix: string, glob = "**"): Promise<RemoteObject[]> {
    const matches = picomatch(glob, { dot: false });
    const found: RemoteObject[] = [];
    let token: string | undefined;
    do {
      const continuation = token;
      const page = await this.call(
        `listing ${prefix || "/"}`,
        (client, abortSignal, { ListObjectsV2Command }) =>
          client.send(
            new ListObjectsV2Command({
              Bucket: this.location.bucket,
              Prefix: prefix,
              ContinuationToken: continuation,
            }),
            { abortSignal },
          ),
      );
      for (const item of page.Contents ?? []) {
        if (!item.Key || item.Key.endsWith("/")) continue;
        if (!matches(item.Key.slice(prefix.length))) continue;
        found.push({
          key: item.Key,
          size: item.Size ?? 0,
          etag: (item.ETag ?? "").replaceAll('"', ""),
          lastModified: item.LastModified?.getTime() ?? 0,
        });
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async read(key: string): Promise<Readable> {
    const object = await this.call(`reading ${key}`, (client, abortSignal, { GetObjectCommand }) =>
      client.send(new GetObjectCommand({ Bucket: this.location.bucket, Key: key }), { abortSignal }),
    );
    const body = object.Body as Readable | undefined;
    if (!body) throw new AppError("SERVICE_UNAVAILABLE", `S3 returned no body for ${this.where(key)}`);
    return guardStream(body, this.location.timeoutMs, this.options.signal, (error) =>
      this.translate(error, `reading ${key}`),
    );
  }

  /**
   * A multipart upload: S3 shows the object only once every part is in, so a reader never sees
   * a partial file. Returns the bytes sent and their SHA-256.
   */
  async write(
    key: string,
    body: Readable | AsyncIterable<Buffer>,
    contentType = "application/octet-stream",
  ): Promise<{ bytes: number; sha256: string }> {
    const [client, { Upload }] = await Promise.all([this.s3(), import("@aws-sdk/lib-storage")]);
    const upload = meteredUpload(body, this.location.timeoutMs, this.options.signal);
    const abort = new AbortController();
    const onAbort = () => abort.abort();
    this.options.signal?.addEventListener("abort", onAbort, { once: true });
    const multipart = new Upload({
      client,
      params: {
        Bucket: this.location.bucket,
        Key: key,
        Body: upload.stream,
        ContentType: contentType,
      },
      partSize: PART_SIZE,
      queueSize: 2,
      leavePartsOnError: false,
      abortController: abort,
    });
    try {
      await multipart.done();
    } catch (error) {
      if (this.options.signal?.aborted) throw abortError(this.options.signal);
      throw this.translate(error, `writing ${key}`);
    } finally {
      this.options.signal?.removeEventListener("abort", onAbort);
    }
    return upload.totals();
  }

  async close(): Promise<void> {
    (await this.client?.catch(() => null))?.destroy();
  }

  private async call<T>(
    action: string,
    operation: (client: S3Client, abortSignal: AbortSignal | undefined, sdk: S3Sdk) => Promise<T>,
  ): Promise<T> {
    try {
      const client = await this.s3();
      return await withDeadline(
        operation(client, this.options.signal, this.sdk!),
        null,
        this.options.signal,
        action,
      );
    } catch (error) {
      throw this.translate(error, action);
    }
  }

  private where(key?: string): string {
    const place = `s3://${this.location.bucket}${key === undefined ? "" : `/${key}`}`;
    return this.location.endpoint ? `${place} at ${new URL(this.location.endpoint).origin}` : place;
  }

  /** One translation for every S3 failure; the original stays as `cause` for the logs. */
  private translate(error: unknown, action: string): Error {
    if (error instanceof AppError || isAbortError(error)) {
      if (this.options.signal?.aborted) return abortError(this.options.signal);
      if (error instanceof AppError) return error;
    }
    const where = this.where();
    const fail = (code: "BAD_USER_INPUT" | "SERVICE_UNAVAILABLE", message: string) =>
      new AppError(code, message, { bucket: this.location.bucket }, { cause: error });
    const name = (error as { name?: string }).name ?? "";
    const status =
      this.sdk && error instanceof this.sdk.S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    if (name === "NoSuchBucket" || (status === 404 && action === "opening the bucket")) {
      return fail("BAD_USER_INPUT", `The bucket ${where} does not exist`);
    }
    if (name === "NoSuchKey" || status === 404) {
      return fail("BAD_USER_INPUT", `S3 ${action} in ${where}: no such object`);
    }
    if (
      ["InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "Forbidden", "InvalidToken"].includes(
        name,
      ) ||
      status === 401 ||
      status === 403
    ) {
      return fail(
        "BAD_USER_INPUT",
        `S3 refused ${action} in ${where}: check accessKeyId, secretAccessKey and the bucket policy`,
      );
    }
    if (status !== undefined && status < 500) {
      return fail("BAD_USER_INPUT", `S3 ${action} in ${where} failed: ${name || status}`);
    }
    const code = (error as { code?: string }).code;
    const detail = code ?? (name || (status ? `HTTP ${status}` : "no answer"));
    return fail("SERVICE_UNAVAILABLE", `Cannot complete S3 ${action} in ${where} (${detail})`);
  }
}
