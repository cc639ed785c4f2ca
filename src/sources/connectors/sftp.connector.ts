// The SFTP source: the files matching a path glob on an SFTP server. An INCREMENTAL sync reads
// only files whose name, size or modification time differ from those the last sync loaded.
import { z } from "zod";
import { pinnedSocket, type OutboundPolicy } from "../../net/outbound.js";
import {
  parseOrThrow,
  problemsOf,
  sftpCredentialsSchema,
  sftpEndpoint,
  sftpEndpointFields,
} from "../../transfer/settings.js";
import { SftpConnection, splitRemoteGlob, type SftpCredentials } from "../../transfer/sftp.js";
import {
  fileParseFields,
  formatProblem,
  readRemoteFiles,
  sampleRemoteFiles,
  type RemoteFolder,
} from "./remote-files.js";
import { allowedHost } from "./targets.js";
import type { Connector, ConnectorContext } from "./types.js";

// Strict, so a password pasted into the config is refused instead of stored in plain text.
export const sftpSourceConfigSchema = z.strictObject({
  ...sftpEndpointFields,
  /** A folder and a file-name glob: `/incoming/*.csv`, `/exports/orders-*.ndjson.gz`. */
  path: z.string().min(1).max(1024),
  ...fileParseFields,
});
export type SftpSourceConfig = z.output<typeof sftpSourceConfigSchema>;

function problems(config: Record<string, unknown>, secrets: Record<string, string>): string[] {
  const found: string[] = [];
  const parsed = sftpSourceConfigSchema.safeParse(config);
  if (!parsed.success) found.push(...problemsOf(parsed.error));
  else {
    try {
      found.push(...formatProblem(splitRemoteGlob(parsed.data.path).pattern, parsed.data.format));
    } catch (error) {
      found.push(`path: ${(error as Error).message}`);
    }
  }
  const secretsCheck = sftpCredentialsSchema.safeParse(secrets);
  if (!secretsCheck.success) found.push(...problemsOf(secretsCheck.error).map((p) => `secrets.${p}`));
  return found;
}

async function openFolder(
  config: SftpSourceConfig,
  secrets: SftpCredentials,
  signal: AbortSignal,
  outbound: OutboundPolicy | undefined,
): Promise<RemoteFolder> {
  // Under a policy the session reaches only the addresses just checked.
  const addresses = outbound ? await allowedHost("host", config.host, outbound) : undefined;
  const connection = await SftpConnection.open(sftpEndpoint(config), secrets, {
    signal,
    ...(addresses ? { socket: () => pinnedSocket(addresses) } : {}),
  });
  return {
    list: async () =>
      (await connection.list(config.path)).map((file) => ({
        origin: file.path,
        name: file.name,
        size: file.size,
        identity: { size: file.size, mtime: file.mtime },
      })),
    open: (file) => Promise.resolve(connection.read(file.origin)),
    close: () => connection.close(),
  };
}

const parsedConfig = (context: Pick<ConnectorContext, "config">) =>
  parseOrThrow(sftpSourceConfigSchema, context.config, "SFTP source");

/** SFTP sources; with a policy, only servers it allows are contacted. */
export const sftpConnectorWith = (outbound?: OutboundPolicy): Connector => ({
  validate: problems,
  async checkTargets(config) {
    if (outbound) await allowedHost("host", parsedConfig({ config }).host, outbound);
  },
  read(context) {
    const config = parsedConfig(context);
    const secrets = parseOrThrow(sftpCredentialsSchema, context.secrets, "SFTP source secrets");
    return readRemoteFiles(() => openFolder(config, secrets, context.signal, outbound), config, context);
  },
  async sample(context, max) {
    const config = parsedConfig(context);
    const secrets = parseOrThrow(sftpCredentialsSchema, context.secrets, "SFTP source secrets");
    const folder = await openFolder(config, secrets, context.signal, outbound);
    return sampleRemoteFiles(folder, config, max, `${config.path} on ${config.host}`);
  },
});

/** Unguarded: for callers that chose the server themselves (tests, tools). */
export const sftpConnector: Connector = sftpConnectorWith();
