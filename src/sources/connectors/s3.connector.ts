// The S3 source (AWS or any S3-compatible store): the objects under a prefix whose keys match a
// glob. An INCREMENTAL sync reads only objects whose ETag differs from the last sync's.
import { z } from "zod";
import { S3Connection, type S3Credentials, type S3Location } from "../../transfer/s3.js";
import {
  fileParseFields,
  formatProblem,
  parseOrThrow,
  problemsOf,
  readRemoteFiles,
  sampleRemoteFiles,
  type RemoteFolder,
} from "./remote-files.js";
import type { Connector, ConnectorContext } from "./types.js";

export const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** Where objects live, shared by S3 sources and S3 file drops. */
export const s3LocationFields = {
  /** S3-compatible stores (MinIO, R2, Ceph): their URL. Unset: AWS S3 for `region`. */
  endpoint: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).optional(),
  region: z.string().min(1).max(64).default("us-east-1"),
  bucket: z
    .string()
    .regex(S3_BUCKET_NAME, "must be a bucket name: 3-63 lower-case letters, digits, dots, hyphens"),
  /** Unset: path style with a custom endpoint, virtual-host style on AWS. */
  forcePathStyle: z.boolean().optional(),
  timeoutMs: z.int().min(1_000).max(600_000).default(30_000),
};

// Strict, so a key pasted into the config is refused instead of stored in plain text.
export const s3SourceConfigSchema = z.strictObject({
  ...s3LocationFields,
  /** Only keys starting with this are listed, e.g. `exports/daily/`. */
  prefix: z.string().max(1024).default(""),
  /** Matched against the key after the prefix: `*.csv` (one level), `**\/*.ndjson.gz` (any depth). */
  glob: z.string().min(1).max(1024).default("**"),
  ...fileParseFields,
});
export type S3SourceConfig = z.output<typeof s3SourceConfigSchema>;

export const s3SecretsSchema = z.strictObject({
  accessKeyId: z.string({ error: "is required" }).min(1, "is required"),
  secretAccessKey: z.string({ error: "is required" }).min(1, "is required"),
  sessionToken: z.string().min(1).optional(),
});

export function s3Location(config: z.output<z.ZodObject<typeof s3LocationFields>>): S3Location {
  return {
    endpoint: config.endpoint,
    region: config.region,
    bucket: config.bucket,
    forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
    timeoutMs: config.timeoutMs,
  };
}

function problems(config: Record<string, unknown>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  const parsed = s3SourceConfigSchema.safeParse(config);
  if (!parsed.success) found.push(...problemsOf(parsed.error));
  else {
    const name = parsed.data.glob.slice(parsed.data.glob.lastIndexOf("/") + 1);
    found.push(...formatProblem(name, parsed.data.format));
  }
  const secretsCheck = s3SecretsSchema.safeParse(secrets);
  if (!secretsCheck.success) found.push(...problemsOf(secretsCheck.error).map((p) => `secrets.${p}`));
  return found;
}

function openFolder(
  config: S3SourceConfig,
  secrets: S3Credentials,
  signal: AbortSignal,
): Promise<RemoteFolder> {
  const connection = new S3Connection(s3Location(config), secrets, { signal });
  return Promise.resolve({
    list: async () =>
      (await connection.list(config.prefix, config.glob)).map((object) => ({
        origin: object.key,
        name: object.key.slice(object.key.lastIndexOf("/") + 1),
        size: object.size,
        identity: { etag: object.etag },
      })),
    open: (file) => connection.read(file.origin),
    close: () => connection.close(),
  });
}

const parsedConfig = (context: Pick<ConnectorContext, "config">) =>
  parseOrThrow(s3SourceConfigSchema, context.config, "S3 source");
const credentials = (secrets: Record<string, string>) =>
  parseOrThrow(s3SecretsSchema, secrets, "S3 source secrets");

export const s3Connector: Connector = {
  validate: problems,
  read(context) {
    const config = parsedConfig(context);
    return readRemoteFiles(
      () => openFolder(config, credentials(context.secrets), context.signal),
      config,
      context,
    );
  },
  async sample(context, max) {
    const config = parsedConfig(context);
    const folder = await openFolder(config, credentials(context.secrets), context.signal);
    return sampleRemoteFiles(folder, config, max, `s3://${config.bucket}/${config.prefix}${config.glob}`);
  },
};
