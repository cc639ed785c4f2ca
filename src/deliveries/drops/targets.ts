// Where a file drop lands: a folder on an SFTP server or a prefix in an S3 bucket. The settings
// are validated like sources' (every problem listed); credentials travel apart, decrypted only to
// upload.
import type { LookupFunction } from "node:net";
import { createReadStream } from "node:fs";
import { posix } from "node:path";
import type { Readable } from "node:stream";
import { z } from "zod";
import type { TransferOptions } from "../../transfer/deadline.js";
import { S3Connection, type S3Credentials } from "../../transfer/s3.js";
import {
  parseOrThrow,
  problemsOf,
  s3CredentialsSchema,
  s3Location,
  s3LocationFields,
  sftpCredentialsSchema,
  sftpEndpoint,
  sftpEndpointFields,
} from "../../transfer/settings.js";
import { SftpConnection, type SftpCredentials } from "../../transfer/sftp.js";

export const sftpDropConfigSchema = z.strictObject({
  ...sftpEndpointFields,
  /** The folder drops go under (created when missing): `/outgoing/datahus`. */
  folder: z.string().min(1).max(1024),
});

export const s3DropConfigSchema = z.strictObject({
  ...s3LocationFields,
  /** Drops go under this key prefix: `datahus/` (empty: the bucket's root). */
  prefix: z
    .string()
    .max(1024)
    .regex(/^(?!\/)/, "must not start with /")
    .default(""),
});

export type SftpDropConfig = z.output<typeof sftpDropConfigSchema>;
export type S3DropConfig = z.output<typeof s3DropConfigSchema>;

/** A drop target with its decrypted credentials. */
export type DropTarget =
  | { type: "SFTP"; config: SftpDropConfig; secrets: SftpCredentials }
  | { type: "S3"; config: S3DropConfig; secrets: S3Credentials };

export type DropTargetType = DropTarget["type"];

/** Every problem with a target's settings and credentials, as "field: message" (empty when fine). */
export function validateDropTarget(type: DropTargetType, config: unknown, secrets: unknown): string[] {
  const problems: string[] = [];
  const configCheck = (type === "SFTP" ? sftpDropConfigSchema : s3DropConfigSchema).safeParse(config);
  if (!configCheck.success) problems.push(...problemsOf(configCheck.error));
  const secretsCheck = (type === "SFTP" ? sftpCredentialsSchema : s3CredentialsSchema).safeParse(secrets);
  if (!secretsCheck.success) problems.push(...problemsOf(secretsCheck.error).map((p) => `secrets.${p}`));
  return problems;
}

/** The parsed target (defaults applied), or BAD_USER_INPUT listing every problem. */
export function parseDropTarget(type: DropTargetType, config: unknown, secrets: unknown): DropTarget {
  return type === "SFTP"
    ? {
        type,
        config: parseOrThrow(sftpDropConfigSchema, config, "SFTP drop target"),
        secrets: parseOrThrow(sftpCredentialsSchema, secrets, "SFTP drop target secrets"),
      }
    : {
        type,
        config: parseOrThrow(s3DropConfigSchema, config, "S3 drop target"),
        secrets: parseOrThrow(s3CredentialsSchema, secrets, "S3 drop target secrets"),
      };
}

/** An open target that writes files by path relative to its folder or prefix. */
export interface DropStore {
  /** Where a relative path lands, for receipts and messages: `sftp://host:22/out/x`, `s3://b/p/x`. */
  locate(relativePath: string): string;
  write(
    relativePath: string,
    body: Readable | AsyncIterable<Buffer>,
    contentType: string,
  ): Promise<{ bytes: number; sha256: string }>;
  /** Proves the target is usable: the SFTP folder exists or can be made; the bucket opens. */
  probe(): Promise<void>;
  /** A local file to a relative path; returns the size that arrived. */
  upload(localPath: string, relativePath: string, contentType: string): Promise<{ bytes: number }>;
  close(): Promise<void>;
}

/** How a drop connects: cancellation, and for S3 a lookup pinned to the endpoint's checked addresses. */
export type DropConnectOptions = TransferOptions & { lookup?: LookupFunction | undefined };

export async function openDropStore(
  target: DropTarget,
  options: DropConnectOptions = {},
): Promise<DropStore> {
  if (target.type === "SFTP") {
    const { config } = target;
    const connection = await SftpConnection.open(sftpEndpoint(config), target.secrets, options);
    const path = (relative: string) => posix.join(config.folder, relative);
    return {
      locate: (relative) => `sftp://${config.host}:${config.port}${posix.resolve("/", path(relative))}`,
      probe: () => connection.mkdirp(config.folder),
      write: (relative, body) => connection.write(path(relative), body),
      upload: (localPath, relative) => connection.upload(localPath, path(relative)),
      close: () => connection.close(),
    };
  }
  const { config } = target;
  const connection = new S3Connection(s3Location(config), target.secrets, options);
  const prefix = config.prefix === "" || config.prefix.endsWith("/") ? config.prefix : `${config.prefix}/`;
  return {
    locate: (relative) => `s3://${config.bucket}/${prefix}${relative}`,
    probe: () => connection.check(),
    write: (relative, body, contentType) => connection.write(`${prefix}${relative}`, body, contentType),
    upload: (localPath, relative, contentType) =>
      connection.write(`${prefix}${relative}`, createReadStream(localPath), contentType),
    close: () => connection.close(),
  };
}

/**
 * Connects and checks the target without writing a drop (for a delivery's connection test).
 * Throws the same clear AppErrors as a drop would: refused login, missing bucket, unreachable.
 */
export async function probeDropTarget(target: DropTarget, options: DropConnectOptions = {}): Promise<string> {
  const store = await openDropStore(target, options);
  try {
    await store.probe();
    return `Ready to drop files at ${store.locate("")}`;
  } finally {
    await store.close();
  }
}
