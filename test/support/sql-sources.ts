// What the database source tests (PostgreSQL, MySQL/MariaDB) share: a connector context over a
// scratch database, read to the end.
import type { Connector, ConnectorContext, SourceRow } from "../../src/sources/connectors/types.js";

/** The MariaDB the MySQL source tests use; MARIADB_URL overrides the machine's own. */
export const MARIADB_URL = new URL(process.env.MARIADB_URL ?? "mysql://root@127.0.0.1:3306");

export function sqlSourceHarness(
  connector: Connector,
  at: Record<string, unknown>,
  secrets: Record<string, string> = {},
) {
  function context(settings: Record<string, unknown>, extra: Partial<ConnectorContext> = {}) {
    const debug: Record<string, unknown>[] = [];
    const ctx: ConnectorContext = {
      sourceId: "sql-source",
      runId: "run",
      config: { ...at, ...settings },
      secrets,
      checkpoint: null,
      mode: "INCREMENTAL",
      log: { debug: (fields) => void debug.push(fields), info() {}, warn() {} },
      signal: new AbortController().signal,
      ...extra,
    };
    return { ctx, debug };
  }

  async function readAll(ctx: ConnectorContext) {
    const reader = connector.read(ctx);
    const rows: SourceRow[] = [];
    for await (const row of reader) rows.push(row);
    return { rows, records: rows.map((r) => (r.ok ? r.record : null)), checkpoint: reader.checkpoint() };
  }

  return { context, readAll };
}
