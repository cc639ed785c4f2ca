// A small wrapper around the official client, shaped by what ClickHouse 18.16 accepts
// (docs/architecture.md §4). Statements come only from the `sql` template; driver errors are translated
// here, once, into ClickHouseError with the server's error code.
//
// Two engines sit behind it: a ClickHouse server over HTTP, or ClickHouse embedded in this
// process (chDB's libchdb, ClickHouse 26.x) through the same official client with chDB's
// connection plugged in. Both take the same statements; what differs by version is asked of
// `version()` once and decided where it matters.
import {
  ClickHouseError as DriverError,
  ClickHouseLogLevel,
  createClient,
  type ClickHouseClient,
  type ClickHouseClientConfigOptions,
  type ClickHouseSettings,
} from "@clickhouse/client";
import { randomUUID } from "node:crypto";
import { once } from "node:events";
import { constants as fsConstants, open as openCallback } from "node:fs";
import { rm } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { Socket } from "node:net";
import { resolve } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";
import { promisify } from "node:util";
import type { Config } from "../config.js";
import { guardedChdbConnection } from "./chdb-guard.js";
import { NamedPipes } from "./named-pipes.js";
import { httpOutput } from "./http-output.js";
import {
  Identifier,
  ident,
  join as joinSql,
  quoteString,
  sql,
  type ParameterizedSql,
  type Sql,
} from "./sql.js";

/**
 * chDB's connection, loaded on first use: its native library adds about 150 MB to a process's
 * memory, which a process on a ClickHouse server never needs.
 */
const createChdbConnection = (options: { path: string }) =>
  (
    createRequire(import.meta.url)("chdb/connection") as typeof import("chdb/connection")
  ).createChdbConnection(options);

const openFd = promisify(openCallback);

/** Server error codes the code base reacts to (ErrorCodes.cpp; identical on 18.16 and today). */
export const ClickHouseErrorCode = {
  TABLE_ALREADY_EXISTS: 57,
  UNKNOWN_TABLE: 60,
  SYNTAX_ERROR: 62,
  UNKNOWN_DATABASE: 81,
  DATABASE_ALREADY_EXISTS: 82,
  UNKNOWN_SETTING: 115,
  TIMEOUT_EXCEEDED: 159,
  MEMORY_LIMIT_EXCEEDED: 241,
} as const;

/** Any failure talking to ClickHouse. `code` is the server's error code when the server sent one. */
export class ClickHouseError extends Error {
  override readonly name = "ClickHouseError";
  readonly code: number | undefined;

  constructor(message: string, options: { code?: number | undefined; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = options.code;
  }
}

// 18.16: "Code: 62, e.displayText() = DB::Exception: <text>, e.what() = DB::Exception".
// Newer servers: "Code: 62. DB::Exception: <text>. (SYNTAX_ERROR) (version 24.3.1.1)".
const SERVER_CODE = /Code: (\d+)[,.]/;
const OLD_FORMAT = /e\.displayText\(\) = (?:DB::Exception: )?([\s\S]*?)(?:, e\.what\(\) = [\w:]+)?\s*$/;

function serverMessage(text: string): string {
  return (OLD_FORMAT.exec(text)?.[1] ?? text).trim();
}

/** Translates whatever the driver threw; the original stays reachable as `cause`. */
export function toClickHouseError(error: unknown): ClickHouseError {
  if (error instanceof ClickHouseError) return error;
  // chDB's connection throws the same class from its own copy of @clickhouse/client-common, which
  // `instanceof` does not recognise: it is known by its name and its string code.
  const foreignDriverError =
    error instanceof Error &&
    error.constructor.name === "ClickHouseError" &&
    typeof (error as { code?: unknown }).code === "string";
  if (error instanceof DriverError || foreignDriverError) {
    // The driver recognised a current-server error; `code` is a string there.
    const code = Number((error as unknown as { code: string }).code);
    return new ClickHouseError(error.message, {
      code: Number.isInteger(code) ? code : undefined,
      cause: error,
    });
  }
  const text = error instanceof Error ? error.message : String(error);
  const code = SERVER_CODE.exec(text)?.[1];
  if (code !== undefined) {
    return new ClickHouseError(serverMessage(text), { code: Number(code), cause: error });
  }
  return new ClickHouseError(`ClickHouse request failed: ${text}`, { cause: error });
}

/**
 * Parses a JSONEachRow body. 18.16 reports an error that happens after the first rows were sent
 * by appending "Code: N, ..." to the 200 response, so a line that is not a JSON object is the
 * server's error, not data.
 */
export function parseJsonEachRow<T>(body: string): T[] {
  const rows: T[] = [];
  let start = 0;
  while (start < body.length) {
    let end = body.indexOf("\n", start);
    if (end === -1) end = body.length;
    const line = body.slice(start, end);
    if (line.startsWith("{")) rows.push(JSON.parse(line) as T);
    else if (line.trim() !== "") throw toClickHouseError(new Error(body.slice(start)));
    start = end + 1;
  }
  return rows;
}

// Table names for insert may be qualified ("db.table"); each part is validated by ident(). An
// unqualified name is this instance's database's (the embedded engine has no per-request one).
function tableIdentifier(table: string | Identifier, database: string): Identifier {
  if (Identifier.is(table)) return table;
  const parts = table.split(".");
  if (parts.length === 1) return ident(database, parts[0]!);
  if (parts.length === 2) return ident(parts[0]!, parts[1]!);
  throw new TypeError(`Invalid table name ${JSON.stringify(table)}: expected "table" or "db.table"`);
}

// JSON has no 64-bit integers: send bigints as strings, which ClickHouse reads into (U)Int64.
function stringifyRow(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

// 18.16 needs both for rows written by Node: ISO timestamps, and objects carrying extra fields.
const INSERT_SETTINGS: ClickHouseSettings = {
  date_time_input_format: "best_effort",
  input_format_skip_unknown_fields: 1,
};

// The server buffers the whole result before answering, so an error surfaces as an HTTP error
// instead of text appended to a half-sent 200 response (18.16 has no exception tag for that).
const QUERY_SETTINGS: ClickHouseSettings = { wait_end_of_query: 1 };
// chDB's engine writes 64-bit integers in JSON as numbers by default, which lose precision past
// 2^53; quoted, they arrive as strings as they do from a server.
const EMBEDDED_QUERY_SETTINGS: ClickHouseSettings = { output_format_json_quote_64bit_integers: 1 };

/** `name = literal` for each setting, as a SET or a SETTINGS clause writes it. */
function settingAssignments(settings: ClickHouseSettings): string[] {
  return Object.entries(settings).flatMap(([name, value]) => {
    if (value === undefined) return [];
    if (!/^\w+$/.test(name)) throw new Error(`setting name ${JSON.stringify(name)}`);
    const literal =
      typeof value === "number" || typeof value === "boolean"
        ? Number(value)
        : `'${String(value).replaceAll("'", "''")}'`;
    return [`${name} = ${literal}`];
  });
}

/** Every setting a statement on the embedded engine has set in this process. */
const settingsSet = new Set<string>();

/**
 * A statement for the embedded engine with its settings in front: chDB's connection turns
 * settings into `SET`s in its session, where they would stay for every later statement (one
 * read's `max_threads = 1` would slow every read after it). Each statement therefore also puts
 * back every setting an earlier one changed and it does not set.
 */
function withSettings(text: string, settings: ClickHouseSettings): string {
  const own = settingAssignments(settings);
  const names = new Set(own.map((a) => a.slice(0, a.indexOf(" "))));
  const back = [...settingsSet].filter((name) => !names.has(name)).map((name) => `${name} = DEFAULT`);
  for (const name of names) settingsSet.add(name);
  return [...back, ...own].map((a) => `SET ${a}; `).join("") + text;
}

// On a cluster (CLICKHOUSE_CLUSTER, src/db/table-layout.ts) every table the code names is a
// Distributed table. By default an insert into one is queued on the receiving server and sent to
// the shards later: a read right after the insert (a run's row count, a correction's recount)
// would miss rows. Sync inserts return once every shard has stored its rows. A subquery over a
// Distributed table (`_key IN (SELECT … FROM t)`, the records page) is refused by default;
// GLOBAL runs it once on the receiving server and sends its result to the shards, exactly what
// the same query means on one server.
const CLUSTER_SETTINGS: ClickHouseSettings = {
  insert_distributed_sync: 1,
  distributed_product_mode: "global",
};

/** How long a statement killed through its output is given to end before it is killed again. */
const KILL_AGAIN_MS = 50;

/** Bytes of an insert body buffered in Node before `write` waits for the socket. */
const INSERT_BUFFER_BYTES = 1 << 20;

/** An INSERT whose body is being sent ({@link ClickHouse.insertStream}). */
export interface InsertStream {
  /** Sends text or bytes; resolves when more may be written. Rejects if the insert failed. */
  write(data: string | Uint8Array): Promise<void>;
  /** Ends the body; resolves once the server has stored every row. */
  end(): Promise<void>;
  /**
   * Stops sending and fails the statement. Blocks the server stored already stay (a staging
   * table is dropped; an upsert written again is idempotent).
   */
  abort(): void;
}

/** Where records live: a server over HTTP, or the engine embedded in this process. */
export type ClickHouseEngine =
  | { kind: "server"; url: string }
  | { kind: "embedded"; /** Data directory; ":memory:" for a temporary one. */ path: string };

const EMBEDDED = "embedded:";

/** `http(s)://…` names a server; `embedded:<dir>` the embedded engine (`embedded:` alone: temporary). */
export function clickHouseEngine(url: string): ClickHouseEngine {
  if (!url.startsWith(EMBEDDED)) return { kind: "server", url };
  const path = url.slice(EMBEDDED.length);
  return { kind: "embedded", path: path === "" || path === ":memory:" ? ":memory:" : resolve(path) };
}

/** The engine's version, read once per instance; see {@link ClickHouse.version}. */
export interface EngineVersion {
  /** As the engine reports it, e.g. "18.16.1" or "26.7.2.1". */
  text: string;
  major: number;
  minor: number;
  /**
   * Server-side query parameters (`{name:Type}`): 19.x and later. On 18.16 every value is a
   * literal rendered by the `sql` template.
   */
  queryParameters: boolean;
}

export function engineVersion(text: string): EngineVersion {
  const [major = 0, minor = 0] = text.split(".").map((part) => Number.parseInt(part, 10) || 0);
  return { text, major, minor, queryParameters: major >= 20 };
}

export interface ClickHouseWrapperOptions extends ClickHouseClientConfigOptions {
  database: string;
  /** CLICKHOUSE_CLUSTER: tables are sharded behind Distributed tables (src/db/table-layout.ts). */
  cluster?: string | undefined;
  /** The embedded engine's data directory; each instance opens its own connection to it. */
  embeddedPath?: string;
  /** Where the embedded engine's outputs pass through named pipes (outputThroughPipe); TMPDIR. */
  outputDir?: string;
}

export class ClickHouse {
  /** The underlying client, for streaming reads and writes. Its errors are not translated. */
  readonly client: ClickHouseClient;
  /** The database unqualified table names resolve to (on a server; always qualify names). */
  readonly database: string;
  /** "embedded" when the engine runs inside this process. */
  readonly engine: ClickHouseEngine["kind"];
  /** The cluster tables are created on (`ON CLUSTER`), or undefined for one server. */
  readonly cluster: string | undefined;
  readonly #options: ClickHouseWrapperOptions;
  /** Settings every statement carries (the cluster's). */
  readonly #settings: ClickHouseSettings;
  /** Named pipes for the embedded engine's outputs, made when the first is needed. */
  #pipes: NamedPipes | null = null;
  #version: Promise<EngineVersion> | undefined;

  constructor(options: ClickHouseWrapperOptions) {
    ident(options.database); // fail fast on a name no statement could use
    this.#options = options;
    this.database = options.database;
    this.engine = options.embeddedPath === undefined ? "server" : "embedded";
    this.cluster = options.cluster;
    const { embeddedPath, cluster, ...client } = options;
    const settings =
      cluster === undefined
        ? client.clickhouse_settings
        : { ...client.clickhouse_settings, ...CLUSTER_SETTINGS };
    this.#settings = settings ?? {};
    this.client = createClient({
      ...client,
      clickhouse_settings: settings,
      // Every instance gets a connection of its own: closing a shared one would close it for all.
      // chDB implements the client's Connection contract against its own copy of
      // @clickhouse/client-common, whose types are nominally different but the same shape.
      ...(embeddedPath === undefined
        ? {}
        : {
            connection: guardedChdbConnection(
              createChdbConnection({ path: embeddedPath }),
            ) as unknown as NonNullable<ClickHouseClientConfigOptions["connection"]>,
          }),
    });
  }

  /**
   * The engine's version, asked once. A failed ask is not remembered, so an engine that was
   * down when first asked is asked again.
   */
  version(): Promise<EngineVersion> {
    this.#version ??= this.#select<{ v: string }>({ text: "SELECT version() AS v", params: {} }).then(
      (rows) => engineVersion(rows[0]?.v ?? "0"),
      (error: unknown) => {
        this.#version = undefined;
        throw error;
      },
    );
    return this.#version;
  }

  /**
   * Another connection to the same server whose current database is `database`; close it too.
   * The client sends its database with every request, so a connection to a database that does
   * not exist yet cannot run anything, not even the CREATE DATABASE that would fix that.
   */
  withDatabase(database: string): ClickHouse {
    return new ClickHouse({ ...this.#options, database });
  }

  /**
   * Runs a SELECT and returns its rows (JSONEachRow: 64-bit integers arrive as strings). Where the
   * engine has query parameters, string values travel as parameters beside the statement.
   */
  async query<T>(q: Sql, settings?: ClickHouseSettings): Promise<T[]> {
    const { queryParameters } = await this.version();
    return this.#select<T>(queryParameters ? q.parameterized() : { text: q.text, params: {} }, settings);
  }

  async #select<T>(q: ParameterizedSql, settings?: ClickHouseSettings): Promise<T[]> {
    const body = await this.call(async () => {
      const result = await this.client.query({
        ...this.#statement(q.text, {
          ...(this.engine === "embedded" ? EMBEDDED_QUERY_SETTINGS : QUERY_SETTINGS),
          ...settings,
        }),
        query_params: q.params,
        format: "JSONEachRow",
      });
      return result.text();
    });
    return parseJsonEachRow<T>(body);
  }

  /**
   * A statement's output (its `FORMAT` at the end of the text) as the engine writes it, read as it
   * comes. On a server: the HTTP response body, read off the socket (http-output.ts). Embedded:
   * through a named pipe the engine writes as a file (outputThroughPipe). Resolves once the engine
   * has taken the statement (embedded: with the first bytes, or the error that stops it).
   */
  async output(
    statement: Sql,
    settings: ClickHouseSettings = {},
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Buffer>> {
    const [, text, format] = /^([\s\S]*)\sFORMAT\s+(\w+)\s*$/.exec(statement.text) ?? [];
    if (text === undefined || format === undefined)
      throw new Error("ClickHouse#output: the statement names no FORMAT");
    if (this.engine === "server") {
      const options = this.#options;
      // A server answers once the statement writes its first bytes: one aborted before then (an
      // export refused while its statement sorts) is killed by its id, as closing the connection
      // reaches it only at that first write.
      const queryId = randomUUID();
      const params: Record<string, string> = { database: this.database, query_id: queryId };
      for (const [name, value] of Object.entries({ ...this.#settings, ...settings })) {
        if (value !== undefined)
          params[name] = typeof value === "boolean" ? (value ? "1" : "0") : String(value);
      }
      const kill = () =>
        void this.command(sql`KILL QUERY WHERE query_id = ${queryId} ASYNC`).catch(
          (error: unknown) => void error,
        );
      signal?.addEventListener("abort", kill, { once: true });
      try {
        return await this.call(() =>
          httpOutput({
            url: String(options.url),
            username: options.username ?? "default",
            password: options.password ?? "",
            params,
            query: statement.text,
            timeoutMs: options.request_timeout ?? 30_000,
            signal,
            userAgent: options.application,
          }),
        );
      } finally {
        signal?.removeEventListener("abort", kill);
      }
    }
    return this.#outputThroughPipe(text, format, settings, signal);
  }

  /**
   * The embedded engine's output: written by the engine into a named pipe (named-pipes.ts) as it
   * would write a file, and read from the other end as it comes. chDB's connection would hold a
   * query's whole result, and its streaming query formats on one thread and cuts Parquet into
   * files of its own; a file is written with the engine's parallel formatting, for every format,
   * and a pipe holds nothing on disk and makes the engine wait for a slow reader. The statement
   * runs on a connection of its own, so a reader that pauses holds up no other statement; one left
   * early is killed (chDB goes on past a write to a pipe no one reads).
   */
  async #outputThroughPipe(
    text: string,
    format: string,
    settings: ClickHouseSettings,
    signal?: AbortSignal,
  ): Promise<AsyncIterable<Buffer>> {
    signal?.throwIfAborted();
    this.#pipes ??= new NamedPipes(this.#options.outputDir ?? tmpdir());
    const path = await this.#pipes.take();
    let removed: Promise<void> | null = null;
    const remove = () => (removed ??= rm(path, { force: true }));
    let pipe: Socket;
    try {
      // Opened before the engine opens it to write (non-blocking, so the open does not wait for
      // it); Linux reports no end of input to a reader until a writer has come and gone.
      const fd = await openFd(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
      pipe = new Socket({ fd, readable: true, writable: false });
    } catch (error) {
      await remove();
      throw error;
    }
    // As a SETTINGS clause: the statement runs alone on its own connection (no SET before it).
    const set = settingAssignments(settings);
    const target = `INSERT INTO FUNCTION file(${quoteString(path)}, ${format})`;
    const connection = createChdbConnection({ path: this.#options.embeddedPath! });
    let writing = true;
    const written = connection.chdb
      .queryAsync(`${target} ${text}${set.length ? ` SETTINGS ${set.join(", ")}` : ""}`)
      .then(
        () => {
          writing = false;
        },
        (error: unknown) => {
          writing = false;
          throw toClickHouseError(error);
        },
      );
    written.catch(() => undefined);
    // Stops the statement if it is still writing, then closes its connection; once. Closing the
    // pipe is not enough: chDB 3.4 carries on past a failed write to the end of the statement, and
    // an engine that has not opened the pipe yet waits in that open for a reader, where no KILL
    // reaches it. So the pipe stays open, its bytes thrown away, until the statement has ended;
    // the KILL is sent again until then (sent before the statement has started, it finds nothing).
    let released: Promise<void> | null = null;
    const release = () =>
      (released ??= (async () => {
        pipe.removeAllListeners("readable");
        pipe.on("data", () => undefined).resume();
        while (writing) {
          await this.command(sql`KILL QUERY WHERE startsWith(query, ${target}) ASYNC`).catch(
            (error: unknown) => void error,
          );
          await Promise.race([written.catch(() => undefined), delay(KILL_AGAIN_MS)]);
        }
        pipe.destroy();
        await written.catch(() => undefined);
        await connection.close();
        await remove();
      })());
    const abort = () => void release();
    signal?.addEventListener("abort", abort, { once: true });
    try {
      // Taken once the first bytes arrive, or the statement ends first (no rows, or an error).
      await Promise.race([once(pipe, "readable"), written]);
      if (pipe.readableLength === 0) await written;
      signal?.throwIfAborted();
    } catch (error) {
      await release();
      throw error;
    }
    // The engine has the pipe open: its name is no longer needed.
    await remove();
    const chunks = pipe[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    // An iterator of its own rather than a generator: `return` before the first `next` (a reader
    // gone before reading) must stop the statement too, and a generator not started yet skips its
    // `finally`.
    const output: AsyncIterableIterator<Buffer> = {
      async next() {
        signal?.throwIfAborted();
        if (released) return { done: true, value: undefined };
        try {
          const chunk = await chunks.next();
          // Aborted while waiting: the pipe was closed under the reader.
          signal?.throwIfAborted();
          if (!chunk.done) return chunk;
          // The engine closed the pipe: its statement has ended, well or not.
          await written;
          await release();
          return { done: true, value: undefined };
        } catch (error) {
          await release();
          throw signal?.aborted ? signal.reason : toClickHouseError(error);
        } finally {
          if (released) signal?.removeEventListener("abort", abort);
        }
      },
      async return() {
        signal?.removeEventListener("abort", abort);
        await release();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
    return output;
  }

  /** Runs a statement that returns no rows (DDL, INSERT ... SELECT, ALTER). */
  async command(q: Sql, settings?: ClickHouseSettings): Promise<void> {
    await this.call(() => this.client.command(this.#statement(q.text, settings)));
  }

  /** A statement's text and settings as the client takes them (embedded: see withSettings). */
  #statement(
    text: string,
    settings: ClickHouseSettings = {},
  ): { query: string; clickhouse_settings?: ClickHouseSettings } {
    if (this.engine === "embedded") return { query: withSettings(text, settings) };
    return { query: text, clickhouse_settings: settings };
  }

  /** Inserts rows as JSONEachRow; Dates may be passed as Date objects or ISO strings. */
  async insert<T extends object>(table: string | Identifier, rows: readonly T[]): Promise<void> {
    const target = tableIdentifier(table, this.database);
    if (rows.length === 0) return;
    if (this.engine === "embedded") {
      const body = rows.map((row) => stringifyRow(row)).join("\n");
      const statement = this.#statement(`INSERT INTO ${target.text} FORMAT JSONEachRow`, INSERT_SETTINGS);
      await this.call(() => this.client.exec({ ...statement, values: Readable.from([body]) }));
      return;
    }
    await this.call(() =>
      this.client.insert({
        table: target.text,
        values: rows as T[],
        format: "JSONEachRow",
        clickhouse_settings: INSERT_SETTINGS,
      }),
    );
  }

  /**
   * An INSERT of RowBinary rows into `table`, `columns` naming each value of a row in order with
   * its type. On a server the bytes stream to it as the body of `INSERT … FORMAT RowBinary`. The
   * embedded engine's connection takes insert bodies as text only (bytes would be re-encoded as
   * UTF-8), so there the rows of one insert are gathered and handed over as
   * `INSERT … SELECT * FROM format(RowBinary, <structure>, unhex(<hex>))`: the same bytes, parsed
   * by the same format.
   */
  insertRowBinary(
    table: Identifier,
    columns: readonly { name: string; type: Sql }[],
    signal?: AbortSignal,
  ): InsertStream {
    const names = joinSql(columns.map((c) => sql`${ident(c.name)}`));
    if (this.engine === "server") {
      return this.insertStream(sql`INSERT INTO ${table} (${names}) FORMAT RowBinary`, signal);
    }
    const structure = columns.map((c) => `${ident(c.name).text} ${c.type.text}`).join(", ");
    const chunks: Buffer[] = [];
    let aborted = false;
    return {
      async write(data) {
        if (aborted) throw new ClickHouseError("insert aborted");
        chunks.push(typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data));
      },
      end: async () => {
        if (aborted) throw new ClickHouseError("insert aborted");
        const body = Buffer.concat(chunks.splice(0));
        if (body.length === 0) return;
        signal?.throwIfAborted();
        const statement = sql`INSERT INTO ${table} (${names}) SELECT * FROM format(RowBinary, ${structure}, unhex(${body.toString("hex")}))`;
        // The rows are part of the statement's text here, which is limited to 256 KiB by default.
        await this.command(statement, { max_query_size: String(statement.text.length + 65_536) });
      },
      abort() {
        aborted = true;
        chunks.length = 0;
      },
    };
  }

  /**
   * Starts an INSERT … FORMAT statement whose data is written as it is made: ClickHouse parses the
   * body while it arrives, storing a block every `max_insert_block_size` rows, so neither side
   * holds more than a block. `write` waits while the socket is full.
   */
  insertStream(statement: Sql, signal?: AbortSignal, settings?: ClickHouseSettings): InsertStream {
    const body = new PassThrough({ highWaterMark: INSERT_BUFFER_BYTES });
    const done = this.call(async () => {
      const result = await this.client.exec({
        ...this.#statement(statement.text, settings),
        values: body,
        abort_signal: signal,
      });
      // The answer to an INSERT is empty; reading it to the end frees the socket.
      for await (const _ of result.stream);
    });
    done.catch(() => {}); // observed by write() and end()
    return {
      async write(data) {
        if (!body.write(data)) await Promise.race([once(body, "drain"), done]);
      },
      async end() {
        body.end();
        await done;
      },
      abort() {
        body.destroy();
      },
    };
  }

  /**
   * True when the server answers a query with these credentials within the timeout. Never throws.
   * A query rather than /ping, so that a wrong password shows up as "not ready".
   */
  async ping(timeoutMs = 2_000): Promise<boolean> {
    try {
      const result = await this.client.ping({ select: true, abort_signal: AbortSignal.timeout(timeoutMs) });
      return result.success;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.client.close();
    await this.#pipes?.close();
  }

  private async call<R>(fn: () => Promise<R>): Promise<R> {
    try {
      return await fn();
    } catch (error) {
      throw toClickHouseError(error);
    }
  }
}

export interface ClickHouseOptions {
  /** Database for unqualified names; defaults to `CLICKHOUSE_DATABASE`. */
  database?: string;
  /** See {@link ClickHouseWrapperOptions.outputDir}. */
  outputDir?: string;
}

export function createClickHouse(config: Config, opts: ClickHouseOptions = {}): ClickHouse {
  const engine = clickHouseEngine(config.CLICKHOUSE_URL);
  return new ClickHouse({
    ...(engine.kind === "server" ? { url: engine.url } : { embeddedPath: engine.path }),
    username: config.CLICKHOUSE_USER,
    password: config.CLICKHOUSE_PASSWORD,
    database: opts.database ?? config.CLICKHOUSE_DATABASE,
    ...(opts.outputDir ? { outputDir: opts.outputDir } : {}),
    cluster: config.CLICKHOUSE_CLUSTER,
    request_timeout: config.CLICKHOUSE_REQUEST_TIMEOUT_MS,
    application: "datahus",
    // No client-wide settings: 18.16 rejects any setting it does not know (code 115), so each
    // call sends only what it needs and what 18.16 has.
    clickhouse_settings: {},
    // HTTP compression works on 18.16 but costs CPU for nothing on a local network; be explicit so
    // a change of the client's default cannot start sending enable_http_compression.
    compression: { request: false, response: false },
    // Failures reach the caller as ClickHouseError and are logged there, once.
    log: { level: ClickHouseLogLevel.OFF },
    json: { parse: JSON.parse, stringify: stringifyRow },
  });
}
