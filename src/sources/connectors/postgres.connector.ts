// PostgreSQL sources: the rows of a publisher's SELECT, streamed through a server-side cursor
// (DECLARE … CURSOR / FETCH) in a READ ONLY transaction with a statement timeout, so a big table
// never sits in memory and the source database cannot be written to. Incremental syncs wrap the
// query as a subquery, `WHERE <cursor> > $1 ORDER BY <cursor>`, with the checkpoint bound as a
// parameter; the checkpoint is the largest cursor value read.
import pg from "pg";
import { AppError } from "../../errors.js";
import { pinnedSocket, type OutboundPolicy } from "../../net/outbound.js";
import {
  databaseSourceSchema,
  jsonFriendly,
  parseSqlSourceConfig,
  allowedServer,
  errorMaker,
  sqlSourceConnector,
  targetOf,
  type DatabaseSourceConfig,
  type StreamOptions,
  type SqlSourceParts,
} from "./sql-source.js";
import type { Checkpoint, Connector } from "./types.js";

export const postgresSourceConfigSchema = databaseSourceSchema({
  protocol: /^postgres(ql)?:$/,
  scheme: "postgres://",
  defaultPort: 5432,
  nameMax: 63,
});

export type PostgresSourceConfig = DatabaseSourceConfig;

// Values Postgres prints exactly and JSON cannot hold (64-bit integers, numerics), or whose exact
// text matters (timestamps to the microsecond: a cursor read back through a JS Date would lose
// digits and re-read rows), stay text; timestamps are then written in ISO 8601.
const TEXT_TYPES = new Set([
  20, // int8
  1700, // numeric
  790, // money
  1082, // date
  1083, // time
  1266, // timetz
  1186, // interval
  17, // bytea, as \x hex
]);
const TIMESTAMP = 1114;
const TIMESTAMPTZ = 1184;
const PG_TIMESTAMP = /^(\d{4,}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)(\+00)?$/;

function isoTimestamp(text: string): string {
  const m = PG_TIMESTAMP.exec(text);
  // infinity and BC dates have no ISO form; they stay as Postgres wrote them.
  return m ? `${m[1]}T${m[2]}${m[3] ? "Z" : ""}` : text;
}

const typeParsers = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === TIMESTAMP || oid === TIMESTAMPTZ) return isoTimestamp;
    if (TEXT_TYPES.has(oid)) return (text: string) => text;
    return pg.types.getTypeParser(oid, format);
  },
};

export function parsePostgresSourceConfig(input: unknown): PostgresSourceConfig {
  return parseSqlSourceConfig(postgresSourceConfigSchema, "PostgreSQL", input);
}

/** The statement the cursor runs: the user's query as a subquery, the checkpoint as $1. */
export function wrappedQuery(config: PostgresSourceConfig, checkpoint: Checkpoint | undefined) {
  const query = config.query.trim().replace(/;+\s*$/, "");
  const column = config.cursorColumn && `"${config.cursorColumn}"`;
  const where = column && checkpoint !== undefined ? ` WHERE ${column} > $1` : "";
  const order = column ? ` ORDER BY ${column}` : "";
  return {
    text: `SELECT * FROM (${query}\n) AS datahus_source${where}${order}`,
    values: where ? [checkpoint] : [],
  };
}

const target = (config: PostgresSourceConfig) => targetOf(config, 5432);

/** Driver errors as AppErrors a publisher can act on; the password never appears. */
function sourceError(error: unknown, config: PostgresSourceConfig, password: string | undefined): unknown {
  if (error instanceof AppError) return error;
  const code = (error as { code?: string }).code ?? "";
  const { message, fail } = errorMaker(error, password, code ? { sqlState: code } : {});
  if (code.startsWith("28"))
    return fail("BAD_USER_INPUT", `PostgreSQL at ${target(config)} refused the login: ${message}`);
  if (code === "3D000") return fail("BAD_USER_INPUT", `PostgreSQL at ${target(config)}: ${message}`);
  if (code === "57014") {
    return fail(
      "BAD_USER_INPUT",
      `The query ran longer than statementTimeoutMs (${config.statementTimeoutMs} ms)`,
    );
  }
  if (code === "25006")
    return fail("BAD_USER_INPUT", "The query tried to write; PostgreSQL sources only read");
  if (/^(42|22|0A|21)/.test(code)) return fail("BAD_USER_INPUT", `The source query failed: ${message}`);
  if (
    ["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET"].includes(code) ||
    /timeout/i.test(message)
  ) {
    return fail("SERVICE_UNAVAILABLE", `Could not reach PostgreSQL at ${target(config)}: ${message}`);
  }
  return error;
}

/**
 * Where to connect. Under a policy, the host is checked and the socket reaches only the checked
 * addresses (the name stays, so verify-full still checks it); a URL's query parameters, which can
 * name other hosts or sockets, are refused there.
 */
async function connectionFor(config: PostgresSourceConfig, outbound: OutboundPolicy | undefined) {
  if (!outbound) {
    return config.url
      ? { connectionString: config.url }
      : { host: config.host, port: config.port, database: config.database, user: config.user };
  }
  const { server, addresses } = await allowedServer(config, 5432, outbound);
  return { ...server, stream: () => pinnedSocket(addresses) };
}

async function clientFor(
  config: PostgresSourceConfig,
  password: string | undefined,
  outbound: OutboundPolicy | undefined,
) {
  const ssl = config.ssl === "disable" ? false : { rejectUnauthorized: config.ssl === "verify-full" };
  return new pg.Client({
    ...(await connectionFor(config, outbound)),
    password,
    ssl,
    types: typeParsers,
    application_name: "datahus-source",
    connectionTimeoutMillis: config.connectTimeoutMs,
  });
}

/** The query's rows, a FETCH at a time, in one read-only snapshot. */
async function* streamRows(
  config: PostgresSourceConfig,
  password: string | undefined,
  options: StreamOptions & { outbound: OutboundPolicy | undefined },
): AsyncGenerator<Record<string, unknown>> {
  options.signal.throwIfAborted();
  const client = await clientFor(config, password, options.outbound);
  // A cancelled run closes the socket: the FETCH in flight fails and the server drops the cursor.
  const stop = () => void client.end().catch(() => undefined);
  options.signal.addEventListener("abort", stop, { once: true });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await client.query(
      "SELECT set_config('statement_timeout', $1, true), set_config('TimeZone', 'UTC', true)",
      [String(config.statementTimeoutMs)],
    );
    const statement = wrappedQuery(config, options.checkpoint);
    await client.query(`DECLARE datahus_rows NO SCROLL CURSOR FOR ${statement.text}`, statement.values);
    for (;;) {
      const { rows } = await client.query<Record<string, unknown>>(
        `FETCH FORWARD ${options.fetchSize} FROM datahus_rows`,
      );
      options.log.debug({ sourceId: options.sourceId, rows: rows.length }, "PostgreSQL source fetch");
      if (rows.length === 0) break;
      for (const row of rows) {
        for (const key of Object.keys(row)) row[key] = jsonFriendly(row[key]);
        yield row;
      }
    }
  } catch (error) {
    options.signal.throwIfAborted();
    throw sourceError(error, config, password);
  } finally {
    options.signal.removeEventListener("abort", stop);
    await client.query("ROLLBACK").catch(() => undefined);
    await client.end().catch(() => undefined);
  }
}

const parts: SqlSourceParts<DatabaseSourceConfig> = {
  label: "PostgreSQL",
  schema: postgresSourceConfigSchema,
  port: 5432,
  target,
  rows: (config, password, options, outbound) => streamRows(config, password, { ...options, outbound }),
};

/** PostgreSQL sources; with a policy, only servers it allows are contacted. */
export const postgresConnectorWith = (outbound?: OutboundPolicy): Connector =>
  sqlSourceConnector(parts, outbound);

/** Unguarded: for callers that chose the server themselves (tests, tools). */
export const postgresConnector: Connector = postgresConnectorWith();
