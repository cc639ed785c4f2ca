import type { SourceType } from "../../generated/prisma/client.js";
import { fileConnector } from "./file.connector.js";
import { httpConnector } from "./http.connector.js";
import { postgresConnector } from "./postgres.connector.js";
import { s3Connector } from "./s3.connector.js";
import { sftpConnector } from "./sftp.connector.js";
import type { Connector } from "./types.js";

/** Server settings some connectors need (from config.ts). */
export interface ConnectorSettings {
  /** FILE sources may read local paths inside this directory only. */
  fileRoot?: string | undefined;
}

/** The connector for each source type. A type missing here cannot be created or synced yet. */
const connectors: Partial<Record<SourceType, (settings: ConnectorSettings) => Connector>> = {
  FILE: (settings) => fileConnector({ root: settings.fileRoot }),
  HTTP: () => httpConnector,
  POSTGRES: () => postgresConnector,
  SFTP: () => sftpConnector,
  S3: () => s3Connector,
};

export function connectorFor(type: SourceType, settings: ConnectorSettings = {}): Connector | undefined {
  return connectors[type]?.(settings);
}

/**
 * For connectors built on the process's stores (PUSH reads its batches from PostgreSQL):
 * createServices registers them once per process. The last registration wins, so a process works
 * one database, as every Datahus process does.
 */
export function registerConnector(type: SourceType, connector: Connector): void {
  connectors[type] = () => connector;
}
