// The S3 source (AWS or any S3-compatible store): the objects under a prefix whose keys match a
// glob. An INCREMENTAL sync reads only objects whose ETag differs from the last sync's.
import { z } from "zod";
import { pinnedLookup, type OutboundPolicy } from "../../net/outbound.js";
import { S3Connection, type S3Credentials } from "../../transfer/s3.js";
import {
  parseOrThrow,
  problemsOf,
  s3CredentialsSchema,
  s3Location,
  s3LocationFields,
} from "../../transfer/settings.js";
import {
  fileParseFields,
  formatProblem,
  readRemoteFiles,
  sampleRemoteFiles,
  type RemoteFolder,
} from "./remote-files.js";
import { allowedUrl } from "./targets.js";
import type { Connector, ConnectorContext } from "./types.js";

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

function problems(config: Record<string, unknown>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  const parsed = s3SourceConfigSchema.safeParse(config);
  if (!parsed.success) found.push(...problemsOf(parsed.error));
  else {
    const name = parsed.data.glob.slice(parsed.data.glob.lastIndexOf("/") + 1);
    found.push(...formatProblem(name, parsed.data.format));
  }
  const secretsCheck = s3CredentialsSchema.safeParse(secrets);
  if (!secretsCheck.success) found.push(...problemsOf(secretsCheck.error).map((p) => `secrets.${p}`));
  return found;
}

/**
 * A custom endpoint is the publisher's choice, so it is checked under the policy and pinned to
 * the checked addresses; AWS itself (no endpoint) is not.
 */
async function endpointLookup(config: S3SourceConfig, outbound: OutboundPolicy | undefined) {
  if (!outbound || config.endpoint === undefined) return undefined;
  return pinnedLookup((await allowedUrl("endpoint", config.endpoint, outbound)).addresses);
}

async function openFolder(
  config: S3SourceConfig,
  secrets: S3Credentials,
  signal: AbortSignal,
  outbound: OutboundPolicy | undefined,
): Promise<RemoteFolder> {
  const lookup = await endpointLookup(config, outbound);
  const connection = new S3Connection(s3Location(config), secrets, { signal, lookup });
  return {
    list: async () =>
      (await connection.list(config.prefix, config.glob)).map((object) => ({
        origin: object.key,
        name: object.key.slice(object.key.lastIndexOf("/") + 1),
        size: object.size,
        identity: { etag: object.etag },
      })),
    open: (file) => connection.read(file.origin),
    close: () => connection.close(),
  };
}

const parsedConfig = (context: Pick<ConnectorContext, "config">) =>
  parseOrThrow(s3SourceConfigSchema, context.config, "S3 source");
const credentials = (secrets: Record<string, string>) =>
  parseOrThrow(s3CredentialsSchema, secrets, "S3 source secrets");

/** S3 sources; with a policy, a custom endpoint must be an address it allows. */
export const s3ConnectorWith = (outbound?: OutboundPolicy): Connector => ({
  validate: problems,
  async checkTargets(config) {
    await endpointLookup(parseOrThrow(s3SourceConfigSchema, config, "S3 source"), outbound);
  },
  read(context) {
    const config = parsedConfig(context);
    return readRemoteFiles(
      () => openFolder(config, credentials(context.secrets), context.signal, outbound),
      config,
      context,
    );
  },
  async sample(context, max) {
    const config = parsedConfig(context);
    const folder = await openFolder(config, credentials(context.secrets), context.signal, outbound);
    return sampleRemoteFiles(folder, config, max, `s3://${config.bucket}/${config.prefix}${config.glob}`);
  },
});

/** Unguarded: for callers that chose the endpoint themselves (tests, tools). */
export const s3Connector: Connector = s3ConnectorWith();
