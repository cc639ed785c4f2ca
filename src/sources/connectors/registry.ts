import type { SourceType } from "../../generated/prisma/client.js";
import { httpConnector } from "./http.connector.js";
import { postgresConnector } from "./postgres.connector.js";
import type { Connector } from "./types.js";

/** The connector for each source type. A type missing here cannot be synced yet. */
const connectors: Partial<Record<SourceType, Connector>> = {
  HTTP: httpConnector,
  POSTGRES: postgresConnector,
};

export function connectorFor(type: SourceType): Connector | undefined {
  return connectors[type];
}

/**
 * For connectors built on the process's stores (PUSH reads its batches from PostgreSQL):
 * createServices registers them once per process. The last registration wins, so a process works
 * one database, as every Datahus process does.
 */
export function registerConnector(type: SourceType, connector: Connector): void {
  connectors[type] = connector;
}
