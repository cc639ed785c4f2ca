import type { SourceType } from "../../generated/prisma/client.js";
import { s3Connector } from "./s3.connector.js";
import { sftpConnector } from "./sftp.connector.js";
import type { Connector } from "./types.js";

/**
 * The connector for each source type. A type missing here cannot be created or synced yet.
 * PUSH sources have no connector: their records arrive through ingestRecords / POST /ingest.
 */
const connectors: Partial<Record<SourceType, Connector>> = {
  SFTP: sftpConnector,
  S3: s3Connector,
};

export function connectorFor(type: SourceType): Connector | undefined {
  return connectors[type];
}
