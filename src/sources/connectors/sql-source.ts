// What the database sources (PostgreSQL, MySQL/MariaDB) share: the rows of a publisher's SELECT
// streamed from the server, values made JSON-friendly, and the checkpoint of an incremental sync
// (the largest value of the cursor column read, the rows coming ordered by it).
import { z } from "zod";
import { AppError, badInput } from "../../errors.js";
import type { OutboundPolicy } from "../../net/outbound.js";
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

export interface ServerForm {
  /** The URL scheme accepted, and how messages name it ("postgres://"). */
  protocol: RegExp;
  scheme: string;
  defaultPort: number;
  /** The longest database and user name the server takes. */
  nameMax: number;
}

/**
 * The settings every database source has: the server (a URL without password, or host, port,
 * database and user), TLS, the query and its cursor, and limits.
 */
export function databaseSourceSchema(form: ServerForm) {
  return z
    .strictObject({
      /** scheme://user@host:port/database, without a password (that goes in the secrets). */
      url: z.string().optional(),
      host: z.string().min(1).max(255).optional(),
      port: count(1, 65_535).default(form.defaultPort),
      database: z.string().min(1).max(form.nameMax).optional(),
      user: z.string().min(1).max(form.nameMax).optional(),
      /** disable; require (encrypted, certificate not checked); verify-full (checked). @default disable */
      ssl: z.enum(["disable", "require", "verify-full"]).default("disable"),
      /** One SELECT (or WITH … SELECT); it runs as a subquery, in a read-only transaction. */
      query: z.string().min(1).max(100_000),
      /** A column of the query's result that only grows (a sequence id, an updated_at). */
      cursorColumn: z.string().regex(IDENTIFIER, "must be a plain column name").optional(),
      /** Rows per fetch. @default 1000 */
      fetchSize: count(1, 100_000).default(1000),
      /** Per statement, the fetches included. @default 300000 */
      statementTimeoutMs: count(1000, 3_600_000).default(300_000),
      connectTimeoutMs: count(100, 120_000).default(10_000),
    })
    .superRefine((config, ctx) => {
      const problem = (path: string, message: string) =>
        ctx.addIssue({ code: "custom", path: [path], message });
      if (config.url !== undefined) {
        const url = URL.canParse(config.url) ? new URL(config.url) : null;
        if (!url || !form.protocol.test(url.protocol)) problem("url", `must be a ${form.scheme} URL`);
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
}

export type DatabaseSourceConfig = z.output<ReturnType<typeof databaseSourceSchema>>;

/** The server the settings name, from either form. */
export function serverOf(config: DatabaseSourceConfig, defaultPort: number) {
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
    port: Number(url.port || defaultPort),
    database: decodeURIComponent(url.pathname.slice(1)) || undefined,
    user: decodeURIComponent(url.username) || undefined,
  };
}

/** Where the source is, for messages: never the password. */
export function targetOf(config: DatabaseSourceConfig, defaultPort: number): string {
  const server = serverOf(config, defaultPort);
  return `${server.host}:${server.port}/${server.database ?? ""}`;
}

/**
 * Under an outbound policy: the server the settings name, checked, and the addresses a socket may
 * reach. A URL's query parameters, which can name other hosts or sockets, are refused.
 */
export async function allowedServer(
  config: DatabaseSourceConfig,
  defaultPort: number,
  outbound: OutboundPolicy,
) {
  if (config.url && new URL(config.url).search) {
    throw badInput("Invalid source: url: query parameters are not accepted; use the ssl field", {
      problems: ["url: query parameters are not accepted; use the ssl field"],
    });
  }
  const { field, ...server } = serverOf(config, defaultPort);
  return { server, addresses: await allowedHost(field, server.host, outbound) };
}

/** Turns a driver error into a publisher's error of `kind`, without the password. */
export function errorMaker(error: unknown, password: string | undefined, fields: Record<string, unknown>) {
  const raw = (error as { message?: string }).message ?? "unknown error";
  const message = password && password.length >= 4 ? raw.split(password).join("[redacted]") : raw;
  const fail = (kind: "BAD_USER_INPUT" | "SERVICE_UNAVAILABLE", text: string) =>
    new AppError(kind, text, fields, { cause: error });
  return { message, fail };
}

export interface StreamOptions {
  /** INCREMENTAL: only rows whose cursor column is beyond this. */
  checkpoint: Checkpoint | undefined;
  fetchSize: number;
  signal: AbortSignal;
  log: ConnectorLog;
  sourceId: string;
}

interface SqlSourceConfig {
  cursorColumn?: string | undefined;
  fetchSize: number;
}

export interface SqlSourceParts<C extends SqlSourceConfig> {
  /** "PostgreSQL", "MySQL": for messages. */
  label: string;
  schema: z.ZodType<C>;
  /** Where the source is, for messages: never the password. */
  target(config: C): string;
  /** The server's default port. */
  port: number;
  rows(
    config: C,
    password: string | undefined,
    options: StreamOptions,
    outbound: OutboundPolicy | undefined,
  ): AsyncIterable<Record<string, unknown>>;
}

/** What JSON cannot carry as such, made JSON-friendly (arrays' elements included). */
export function jsonFriendly(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (Buffer.isBuffer(value)) return `\\x${value.toString("hex")}`;
  if (Array.isArray(value)) return value.map(jsonFriendly);
  return value;
}

export const asCheckpoint = (value: unknown): Checkpoint | undefined =>
  typeof value === "string" || typeof value === "number" ? value : undefined;

const problemsOf = (error: z.ZodError) =>
  error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);

export function parseSqlSourceConfig<C>(schema: z.ZodType<C>, label: string, input: unknown): C {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = problemsOf(result.error);
  throw new AppError("BAD_USER_INPUT", `Invalid ${label} source: ${problems.join("; ")}`, { problems });
}

/**
 * A connector from a database's parts: validation, reads with checkpoints, samples; with a policy,
 * only servers it allows are contacted.
 */
export function sqlSourceConnector<C extends SqlSourceConfig & DatabaseSourceConfig>(
  parts: SqlSourceParts<C>,
  outbound?: OutboundPolicy,
): Connector {
  const parse = (input: unknown) => parseSqlSourceConfig(parts.schema, parts.label, input);
  return {
    async checkTargets(config) {
      if (outbound) await allowedServer(parse(config), parts.port, outbound);
    },

    validate(config) {
      const result = parts.schema.safeParse(config);
      return result.success ? [] : problemsOf(result.error);
    },

    read(context: ConnectorContext): SourceReader {
      const config = parse(context.config);
      const previous = context.mode === "INCREMENTAL" ? asCheckpoint(context.checkpoint) : undefined;
      let checkpoint: Checkpoint | null = asCheckpoint(context.checkpoint) ?? null;
      return {
        async *[Symbol.asyncIterator]() {
          let rowNumber = 0;
          const rows = parts.rows(
            config,
            context.secrets.password,
            {
              checkpoint: previous,
              fetchSize: config.fetchSize,
              signal: context.signal,
              log: context.log,
              sourceId: context.sourceId,
            },
            outbound,
          );
          for await (const record of rows) {
            rowNumber++;
            // Rows come ordered by the cursor: the last non-null value is the largest.
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
      const config = parse(context.config);
      const records: Record<string, unknown>[] = [];
      const rows = parts.rows(
        config,
        context.secrets.password,
        {
          checkpoint: undefined,
          fetchSize: max,
          signal: context.signal,
          log: context.log,
          sourceId: context.sourceId,
        },
        outbound,
      );
      for await (const record of rows) {
        records.push(record);
        if (records.length >= max) break;
      }
      return { message: `Read ${records.length} row(s) from ${parts.target(config)}`, records };
    },
  };
}
