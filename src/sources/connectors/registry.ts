import type { SourceType } from "../../generated/prisma/client.js";
import type { OutboundPolicy } from "../../net/outbound.js";
import { fileConnector } from "./file.connector.js";
import { httpConnector, httpConnectorWith } from "./http.connector.js";
import { mysqlConnector, mysqlConnectorWith } from "./mysql.connector.js";
import { postgresConnector, postgresConnectorWith } from "./postgres.connector.js";
import { s3Connector, s3ConnectorWith } from "./s3.connector.js";
import { sftpConnector, sftpConnectorWith } from "./sftp.connector.js";
import { streamConnector } from "./stream.connector.js";
import type { Connector } from "./types.js";

/** Server settings some connectors need (from config.ts). */
export interface ConnectorSettings {
  /** FILE sources may read local paths inside this directory only. */
  fileRoot?: string | undefined;
  /**
   * Which addresses sources may reach (OUTBOUND_ALLOW_*). The server always sets it; unset, the
   * connectors contact whatever they are given (tests and tools that chose the target).
   */
  outbound?: OutboundPolicy | undefined;
}

/** The connector for each source type. A type missing here cannot be created or synced yet. */
const connectors: Partial<Record<SourceType, (settings: ConnectorSettings) => Connector>> = {
  FILE: (settings) => fileConnector({ root: settings.fileRoot, outbound: settings.outbound }),
  HTTP: ({ outbound }) => (outbound ? httpConnectorWith(outbound) : httpConnector),
  POSTGRES: ({ outbound }) => (outbound ? postgresConnectorWith(outbound) : postgresConnector),
  MYSQL: ({ outbound }) => (outbound ? mysqlConnectorWith(outbound) : mysqlConnector),
  SFTP: ({ outbound }) => (outbound ? sftpConnectorWith(outbound) : sftpConnector),
  S3: ({ outbound }) => (outbound ? s3ConnectorWith(outbound) : s3Connector),
  STREAM: () => streamConnector,
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
