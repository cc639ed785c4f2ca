// A ConnectorContext for connector tests, with a log that records lines so tests can check that
// nothing secret was logged.
import { randomUUID } from "node:crypto";
import type { ConnectorContext, ConnectorLog, SourceRow } from "../../src/sources/connectors/types.js";

export function recordingLog(): { log: ConnectorLog; lines: string[] } {
  const lines: string[] = [];
  const record = (level: string) => (fields: Record<string, unknown>, message: string) =>
    void lines.push(JSON.stringify({ level, message, ...fields }));
  return { log: { debug: record("debug"), info: record("info"), warn: record("warn") }, lines };
}

export function connectorContext(
  config: Record<string, unknown>,
  secrets: Record<string, string>,
  extra: Partial<ConnectorContext> = {},
): ConnectorContext {
  return {
    sourceId: randomUUID(),
    runId: randomUUID(),
    config,
    secrets,
    checkpoint: null,
    mode: "FULL_REFRESH",
    log: recordingLog().log,
    signal: new AbortController().signal,
    ...extra,
  };
}

export async function collect(rows: AsyncIterable<SourceRow>): Promise<SourceRow[]> {
  const all: SourceRow[] = [];
  for await (const row of rows) all.push(row);
  return all;
}
