import type { SourceType } from "../../generated/prisma/client.js";
import { fileConnector } from "./file.connector.js";
import type { Connector } from "./types.js";

/** Server settings some connectors need (from config.ts). */
export interface ConnectorSettings {
  /** FILE sources may read local paths inside this directory only. */
  fileRoot?: string | undefined;
}

/**
 * The connector for each source type. A type missing here cannot be created or synced yet.
 * PUSH sources have no connector: their records arrive through ingestRecords / POST /ingest.
 */
const connectors: Partial<Record<SourceType, (settings: ConnectorSettings) => Connector>> = {
  FILE: (settings) => fileConnector({ root: settings.fileRoot }),
};

export function connectorFor(type: SourceType, settings: ConnectorSettings = {}): Connector | undefined {
  return connectors[type]?.(settings);
}
