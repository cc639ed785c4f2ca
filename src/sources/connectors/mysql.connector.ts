// MySQL and MariaDB sources: the rows of a publisher's SELECT, streamed from the server as they
// arrive (mysql2's query stream: the socket pauses while the pipeline is behind, so a big table
// never sits in memory), in a READ ONLY transaction with a consistent snapshot and a time limit.
// Incremental syncs wrap the query as a subquery, `WHERE <cursor> > ? ORDER BY <cursor>`, with the
// checkpoint escaped by the driver (an integer beyond 2^53 as an exact literal); the checkpoint
// is the largest cursor value read. Same settings as the PostgreSQL source (sql-source.ts).
import mysql from "mysql2";
import { AppError } from "../../errors.js";
import { pinnedSocket, type OutboundPolicy } from "../../net/outbound.js";
import {
  databaseSourceSchema,
  jsonFriendly,
  parseSqlSourceConfig,
  allowedServer,
  errorMaker,
  serverOf,
  sqlSourceConnector,
  targetOf,
  type DatabaseSourceConfig,
  type StreamOptions,
  type SqlSourceParts,
} from "./sql-source.js";
import type { Checkpoint, Connector } from "./types.js";

const PORT = 3306;

type TypeCastFn = Extract<mysql.ConnectionOptions["typeCast"], (...args: never[]) => unknown>;
type Field = Parameters<TypeCastFn>[0];
type Next = Parameters<TypeCastFn>[1];

export const mysqlSourceConfigSchema = databaseSourceSchema({
  protocol: /^(mysql|mariadb):$/,
  scheme: "mysql://",
  defaultPort: PORT,
  nameMax: 64,
});

export type MysqlSourceConfig = DatabaseSourceConfig;

export function parseMysqlSourceConfig(input: unknown): MysqlSourceConfig {
  return parseSqlSourceConfig(mysqlSourceConfigSchema, "MySQL", input);
}

const target = (config: MysqlSourceConfig) => targetOf(config, PORT);
const SQL_DATETIME = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}(?:\.\d+)?)$/;
const EXACT_INTEGER = /^-?\d{1,20}$/;

/**
 * Values as exact text where JSON numbers would lose them (BIGINT, DECIMAL), times in ISO 8601
 * (TIMESTAMP in UTC, the session's zone, with a Z; DATETIME without), JSON parsed (MySQL's JSON
 * type and MariaDB's JSON alias), everything else as mysql2 reads it.
 */
function typeCast(field: Field, next: Next): unknown {
  switch (field.type) {
    case "LONGLONG":
    case "NEWDECIMAL":
    case "DECIMAL":
      return field.string();
    case "TIMESTAMP":
    case "TIMESTAMP2":
    case "DATETIME":
    case "DATETIME2": {
      const text = field.string();
      const m = text === null ? null : SQL_DATETIME.exec(text);
      if (!m) return text; // NULL, or a zero date kept as MySQL wrote it
      return `${m[1]}T${m[2]}${field.type.startsWith("TIMESTAMP") ? "Z" : ""}`;
    }
    case "DATE":
    case "NEWDATE":
      return field.string();
    case "JSON":
      return parseJson(field.string());
    default:
      return field.extendedFormat === "json" ? parseJson(field.string()) : next();
  }
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

/** The statement the stream runs: the user's query as a subquery, the checkpoint escaped. */
export function wrappedQuery(config: MysqlSourceConfig, checkpoint: Checkpoint | undefined): string {
  const query = config.query.trim().replace(/;+\s*$/, "");
  const column = config.cursorColumn && mysql.escapeId(config.cursorColumn);
  const value =
    typeof checkpoint === "string" && EXACT_INTEGER.test(checkpoint)
      ? checkpoint // BIGINT cursors are kept as text: compared as text they would sort as text
      : mysql.escape(checkpoint);
  const where = column && checkpoint !== undefined ? ` WHERE ${column} > ${value}` : "";
  const order = column ? ` ORDER BY ${column}` : "";
  return `SELECT * FROM (${query}\n) AS datahus_source${where}${order}`;
}

const ACCESS_DENIED = new Set([
  "ER_ACCESS_DENIED_ERROR",
  "ER_DBACCESS_DENIED_ERROR",
  "ER_ACCESS_DENIED_NO_PASSWORD_ERROR",
]);
const UNREACHABLE = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ETIMEDOUT", "ECONNRESET"]);

/** Driver errors as AppErrors a publisher can act on; the password never appears. */
function sourceError(error: unknown, config: MysqlSourceConfig, password: string | undefined): unknown {
  if (error instanceof AppError) return error;
  const e = error as { code?: string; sqlState?: string };
  const code = e.code ?? "";
  const { message, fail } = errorMaker(error, password, code ? { mysqlCode: code } : {});
  if (ACCESS_DENIED.has(code))
    return fail("BAD_USER_INPUT", `MySQL at ${target(config)} refused the login: ${message}`);
  if (code === "ER_BAD_DB_ERROR") return fail("BAD_USER_INPUT", `MySQL at ${target(config)}: ${message}`);
  if (code === "PROTOCOL_SEQUENCE_TIMEOUT") {
    return fail(
      "BAD_USER_INPUT",
      `The query ran longer than statementTimeoutMs (${config.statementTimeoutMs} ms)`,
    );
  }
  if (code === "ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION") {
    return fail("BAD_USER_INPUT", "The query tried to write; MySQL sources only read");
  }
  if (e.sqlState && /^(42|22|0A|21)/.test(e.sqlState))
    return fail("BAD_USER_INPUT", `The source query failed: ${message}`);
  if (UNREACHABLE.has(code) || /timeout/i.test(message)) {
    return fail("SERVICE_UNAVAILABLE", `Could not reach MySQL at ${target(config)}: ${message}`);
  }
  return error;
}

/**
 * Where to connect. Under a policy, the host is checked and the socket reaches only the checked
 * addresses (the name stays, so verify-full still checks it).
 */
async function connectionFor(config: MysqlSourceConfig, outbound: OutboundPolicy | undefined) {
  if (!outbound) {
    const { field: _field, ...server } = serverOf(config, PORT);
    return server;
  }
  const { server, addresses } = await allowedServer(config, PORT, outbound);
  const stream = () => pinnedSocket(addresses).connect(server.port, server.host);
  return { ...server, stream };
}

async function connect(
  config: MysqlSourceConfig,
  password: string | undefined,
  outbound: OutboundPolicy | undefined,
) {
  const ssl = config.ssl === "disable" ? undefined : { rejectUnauthorized: config.ssl === "verify-full" };
  const connection = mysql.createConnection({
    ...(await connectionFor(config, outbound)),
    password,
    ssl,
    connectTimeout: config.connectTimeoutMs,
    typeCast,
    timezone: "Z",
    multipleStatements: false,
    supportBigNumbers: true,
    bigNumberStrings: true,
  });
  connection.on("error", () => undefined);
  return connection;
}

const run = (connection: mysql.Connection, statement: string) =>
  new Promise<void>((resolve, reject) =>
    connection.query(statement, (error) => (error ? reject(error) : resolve())),
  );

/** The query's rows as the server sends them, in one read-only snapshot. */
async function* streamRows(
  config: MysqlSourceConfig,
  password: string | undefined,
  options: StreamOptions & { outbound: OutboundPolicy | undefined },
): AsyncGenerator<Record<string, unknown>> {
  options.signal.throwIfAborted();
  const connection = await connect(config, password, options.outbound);
  // A cancelled run closes the socket: the server ends the query with the connection.
  const stop = () => connection.destroy();
  options.signal.addEventListener("abort", stop, { once: true });
  try {
    await run(connection, "SET time_zone = '+00:00'");
    await run(connection, "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    await run(connection, "START TRANSACTION READ ONLY, WITH CONSISTENT SNAPSHOT");
    const sql = wrappedQuery(config, options.checkpoint);
    const rows = connection
      .query({ sql, timeout: config.statementTimeoutMs })
      .stream({ highWaterMark: options.fetchSize });
    let read = 0;
    for await (const row of rows as AsyncIterable<Record<string, unknown>>) {
      for (const key of Object.keys(row)) row[key] = jsonFriendly(row[key]);
      if (++read % options.fetchSize === 0) {
        options.log.debug({ sourceId: options.sourceId, rows: read }, "MySQL source rows");
      }
      yield row;
    }
  } catch (error) {
    options.signal.throwIfAborted();
    throw sourceError(error, config, password);
  } finally {
    options.signal.removeEventListener("abort", stop);
    // Leaving early (a sample) would otherwise wait for the rest of the result: close the socket.
    connection.destroy();
  }
}

const parts: SqlSourceParts<DatabaseSourceConfig> = {
  label: "MySQL",
  schema: mysqlSourceConfigSchema,
  port: PORT,
  target,
  rows: (config, password, options, outbound) => streamRows(config, password, { ...options, outbound }),
};

/** MySQL and MariaDB sources; with a policy, only servers it allows are contacted. */
export const mysqlConnectorWith = (outbound?: OutboundPolicy): Connector =>
  sqlSourceConnector(parts, outbound);

/** Unguarded: for callers that chose the server themselves (tests, tools). */
export const mysqlConnector: Connector = mysqlConnectorWith();
