// PostgreSQL sources: the rows of a publisher's SELECT, streamed through a server-side cursor
// (DECLARE … CURSOR / FETCH) in a READ ONLY transaction with a statement timeout, so a big table
// never sits in memory and the source database cannot be written to. Incremental syncs wrap the
// query as a subquery, `WHERE <cursor> > $1 ORDER BY <cursor>`, with the checkpoint bound as a
// parameter; the checkpoint is the largest cursor value read.
import pg from "pg";
import { z } from "zod";
import { AppError, badInput } from "../../errors.js";
import { pinnedSocket, type OutboundPolicy } from "../../net/outbound.js";
import { allowedHost } from "./targets.js";
import type {
  Checkpoint,
  Connector,
  ConnectorContext,
  ConnectorLog,
  SourceReader,
  SourceRow,
} from "./types.js";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const count = (min: number, max: number) => z.int().min(min).max(max);

export const postgresSourceConfigSchema = z
  .strictObject({
    /** postgres://user@host:port/database, without a password (that goes in the secrets). */
    url: z.string().optional(),
    host: z.string().min(1).max(255).optional(),
    port: count(1, 65_535).default(5432),
    database: z.string().min(1).max(63).optional(),
    user: z.string().min(1).max(63).optional(),
    /** disable; require (encrypted, certificate not checked); verify-full (checked). @default disable */
    ssl: z.enum(["disable", "require", "verify-full"]).default("disable"),
    /** One SELECT (or WITH … SELECT); it runs as a subquery, in a read-only transaction. */
    query: z.string().min(1).max(100_000),
    /** A column of the query's result that only grows (a sequence id, an updated_at). */
    cursorColumn: z.string().regex(IDENTIFIER, "must be a plain column name").optional(),
    /** Rows per FETCH. @default 1000 */
    fetchSize: count(1, 100_000).default(1000),
    /** Per statement, the FETCHes included. @default 300000 */
    statementTimeoutMs: count(1000, 3_600_000).default(300_000),
    connectTimeoutMs: count(100, 120_000).default(10_000),
  })
  .superRefine((config, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: [path], message });
    if (config.url !== undefined) {
      const url = URL.canParse(config.url) ? new URL(config.url) : null;
      if (!url || !/^postgres(ql)?:$/.test(url.protocol)) problem("url", "must be a postgres:// URL");
      else if (url.password) problem("url", "must not carry the password; put it in secrets.password");
      if (config.host !== undefined || config.database !== undefined || config.user !== undefined) {
        problem("url", "give either url or host, database and user");
      }
    } else {
      for (const field of ["host", "database", "user"] as const) {
        if (config[field] === undefined) problem(field, "is required (or give url)");
      }
    }
  });

export type PostgresSourceConfig = z.output<typeof postgresSourceConfigSchema>;

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

/** What JSON cannot carry as such, made JSON-friendly (arrays' elements included). */
function jsonFriendly(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString("hex")}`;
  if (Array.isArray(value)) return value.map(jsonFriendly);
  return value;
}

export function parsePostgresSourceConfig(input: unknown): PostgresSourceConfig {
  const result = postgresSourceConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new AppError("BAD_USER_INPUT", `Invalid PostgreSQL source: ${problems.join("; ")}`, { problems });
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

/** Where the source is, for messages: never the password. */
function target(config: PostgresSourceConfig): string {
  if (config.url) {
    const url = new URL(config.url);
    return `${url.hostname}:${url.port || 5432}${url.pathname}`;
  }
  return `${config.host}:${config.port}/${config.database}`;
}

/** Driver errors as AppErrors a publisher can act on; the password never appears. */
function sourceError(error: unknown, config: PostgresSourceConfig, password: string | undefined): unknown {
  if (error instanceof AppError) return error;
  const e = error as { code?: string; message?: string };
  const safe = (text: string) =>
    password && password.length >= 4 ? text.split(password).join("[redacted]") : text;
  const message = safe(e.message ?? "unknown error");
  const code = e.code ?? "";
  const fail = (kind: "BAD_USER_INPUT" | "SERVICE_UNAVAILABLE", text: string) =>
    new AppError(kind, text, code ? { sqlState: code } : {}, { cause: error });
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

/** The server the settings name, from either form. */
function serverOf(config: PostgresSourceConfig) {
  if (!config.url) {
    return {
      field: "host",
      host: config.host!,
      port: config.port,
      database: config.database,
      user: config.user,
    };
  }
  const url = new URL(config.url);
  return {
    field: "url",
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: Number(url.port || 5432),
    database: decodeURIComponent(url.pathname.slice(1)) || undefined,
    user: decodeURIComponent(url.username) || undefined,
  };
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
  if (config.url && new URL(config.url).search) {
    throw badInput("Invalid source: url: query parameters are not accepted; use the ssl field", {
      problems: ["url: query parameters are not accepted; use the ssl field"],
    });
  }
  const { field, ...server } = serverOf(config);
  const addresses = await allowedHost(field, server.host, outbound);
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

interface StreamOptions {
  checkpoint: Checkpoint | undefined;
  fetchSize: number;
  signal: AbortSignal;
  log: ConnectorLog;
  sourceId: string;
  outbound: OutboundPolicy | undefined;
}

/** The query's rows, a FETCH at a time, in one read-only snapshot. */
async function* streamRows(
  config: PostgresSourceConfig,
  password: string | undefined,
  options: StreamOptions,
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

const asCheckpoint = (value: unknown): Checkpoint | undefined =>
  typeof value === "string" || typeof value === "number" ? value : undefined;

/** PostgreSQL sources; with a policy, only servers it allows are contacted. */
export const postgresConnectorWith = (outbound?: OutboundPolicy): Connector => ({
  async checkTargets(config) {
    if (outbound) await connectionFor(parsePostgresSourceConfig(config), outbound);
  },

  validate(config) {
    const result = postgresSourceConfigSchema.safeParse(config);
    return result.success
      ? []
      : result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  },

  read(context: ConnectorContext): SourceReader {
    const config = parsePostgresSourceConfig(context.config);
    const previous = context.mode === "INCREMENTAL" ? asCheckpoint(context.checkpoint) : undefined;
    let checkpoint: Checkpoint | null = asCheckpoint(context.checkpoint) ?? null;
    return {
      async *[Symbol.asyncIterator]() {
        let rowNumber = 0;
        const rows = streamRows(config, context.secrets.password, {
          checkpoint: previous,
          fetchSize: config.fetchSize,
          signal: context.signal,
          log: context.log,
          sourceId: context.sourceId,
          outbound,
        });
        for await (const record of rows) {
          rowNumber++;
          // Rows come ordered by the cursor, NULLs last: the last non-null value is the largest.
          const cursor = config.cursorColumn ? asCheckpoint(record[config.cursorColumn]) : undefined;
          if (cursor !== undefined) checkpoint = cursor;
          const row: SourceRow = {
            ok: true,
            rowNumber,
            record,
            bytes: Buffer.byteLength(JSON.stringify(record)),
          };
          yield row;
        }
      },
      checkpoint: () => checkpoint,
    };
  },

  async sample(context, max) {
    const config = parsePostgresSourceConfig(context.config);
    const records: Record<string, unknown>[] = [];
    const rows = streamRows(config, context.secrets.password, {
      checkpoint: undefined,
      fetchSize: max,
      signal: context.signal,
      log: context.log,
      sourceId: context.sourceId,
      outbound,
    });
    for await (const record of rows) {
      records.push(record);
      if (records.length >= max) break;
    }
    return { message: `Read ${records.length} row(s) from ${target(config)}`, records };
  },
});

/** Unguarded: for callers that chose the server themselves (tests, tools). */
export const postgresConnector: Connector = postgresConnectorWith();
