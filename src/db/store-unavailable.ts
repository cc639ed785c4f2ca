// One translation of "a store is down" for every store: PostgreSQL (through Prisma, or pg for
// pg-boss), ClickHouse and Redis. A request that fails because a store cannot be reached is not a
// bug: the client sees SERVICE_UNAVAILABLE with HTTP 503 and Retry-After (http/server.ts,
// graphql/error-masking.ts, http/subscriptions.ts), safe to retry; anything else stays internal.
// The original error is kept as `cause` and logged.
import { AppError, ErrorCode } from "../errors.js";
import { Prisma } from "../generated/prisma/client.js";
import { ClickHouseError } from "./clickhouse.js";

export type Store = "PostgreSQL" | "ClickHouse" | "Redis";

/** Seconds a client is told to wait before retrying a request refused for a store outage. */
export const STORE_RETRY_AFTER_SECONDS = 5;

// Prisma's own codes for an unreachable or overloaded database: can't reach, timed out,
// connection closed, pool timeout, too many connections, transaction cut short.
const PRISMA_CODES = new Set(["P1001", "P1002", "P1008", "P1017", "P2024", "P2028", "P2037"]);
// Prisma's driver-adapter error kinds for the same (@prisma/driver-adapter-utils).
const ADAPTER_KINDS = new Set([
  "DatabaseNotReachable",
  "DatabaseDoesNotExist",
  "ConnectionClosed",
  "SocketTimeout",
  "TooManyConnections",
  "TransactionAlreadyClosed",
]);
/** SQLSTATE: connection exceptions (08), operator intervention (57P01-57P05), too many connections. */
const unavailableSqlState = (code: string) =>
  code.startsWith("08") || /^57P0[1-5]$/.test(code) || code === "53300";
const PRISMA_SQLSTATE = /Code: `([0-9A-Z]{5})`/;
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
]);
// node-postgres and ioredis report a lost connection in words only.
const LOST_CONNECTION =
  /Connection terminated|timeout exceeded when trying to connect|Connection is closed|Stream isn't writeable|Reached the max retries per request|socket hang up|Client network socket disconnected|Timeout error/i;

const TOO_MANY_SIMULTANEOUS_QUERIES = 202;

/** The store an error came from, when the error is an outage; undefined for anything else. */
export function unavailableStore(error: unknown): Store | undefined {
  const seen = new Set<unknown>();
  let current: unknown = error;
  let store: Store | undefined;
  while (current && typeof current === "object" && !seen.has(current)) {
    seen.add(current);
    store ??= storeOf(current);
    if (isOutage(current)) return store ?? "PostgreSQL";
    current =
      (current as { cause?: unknown }).cause ?? (current as { originalError?: unknown }).originalError;
  }
  return undefined;
}

function storeOf(error: object): Store | undefined {
  if (error instanceof ClickHouseError) return "ClickHouse";
  if (
    error instanceof Prisma.PrismaClientKnownRequestError ||
    error instanceof Prisma.PrismaClientInitializationError ||
    error instanceof Prisma.PrismaClientUnknownRequestError
  ) {
    return "PostgreSQL";
  }
  const name = (error as { name?: unknown }).name;
  if (name === "MaxRetriesPerRequestError" || name === "ReplyError") return "Redis";
  const message = (error as { message?: unknown }).message;
  if (
    typeof message === "string" &&
    /Stream isn't writeable|Connection is closed|max retries per request/.test(message)
  ) {
    return "Redis";
  }
  // pg's DatabaseError (pg-boss) carries a SQLSTATE and a severity.
  if (typeof (error as { severity?: unknown }).severity === "string") return "PostgreSQL";
  return undefined;
}

function isOutage(error: object): boolean {
  if (error instanceof ClickHouseError && error.code === TOO_MANY_SIMULTANEOUS_QUERIES) return true;
  if (error instanceof Prisma.PrismaClientInitializationError) return true;
  if (error instanceof Prisma.PrismaClientKnownRequestError) {
    if (PRISMA_CODES.has(error.code)) return true;
    const adapter = (
      error.meta?.driverAdapterError as { cause?: { kind?: string; code?: string } } | undefined
    )?.cause;
    if (adapter?.kind && ADAPTER_KINDS.has(adapter.kind)) return true;
    if (adapter?.kind === "postgres" && adapter.code && unavailableSqlState(adapter.code)) return true;
  }
  if (
    error instanceof Prisma.PrismaClientKnownRequestError ||
    error instanceof Prisma.PrismaClientUnknownRequestError
  ) {
    // "Database error. Code: `57P01`": Prisma's text is all some of its errors carry.
    const sqlState = PRISMA_SQLSTATE.exec(error.message)?.[1];
    if (sqlState && unavailableSqlState(sqlState)) return true;
  }
  const code = (error as { code?: unknown }).code;
  if (
    typeof code === "string" &&
    (NETWORK_CODES.has(code) || (/^[0-9A-Z]{5}$/.test(code) && unavailableSqlState(code)))
  ) {
    return true;
  }
  const name = (error as { name?: unknown }).name;
  if (name === "MaxRetriesPerRequestError") return true;
  const message = (error as { message?: unknown }).message;
  return typeof message === "string" && LOST_CONNECTION.test(message);
}

/** SERVICE_UNAVAILABLE for a store outage (the original as `cause`), or undefined. */
export function storeUnavailable(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error.code === ErrorCode.SERVICE_UNAVAILABLE ? error : undefined;
  const store = unavailableStore(error);
  if (!store) return undefined;
  return new AppError(
    ErrorCode.SERVICE_UNAVAILABLE,
    `${store} is unavailable; retry shortly`,
    { retryAfterSeconds: STORE_RETRY_AFTER_SECONDS },
    { cause: error },
  );
}

/** The Retry-After value for an error a client may retry (SERVICE_UNAVAILABLE, RATE_LIMITED). */
export function retryAfterOf(error: AppError): number | undefined {
  const seconds = error.fields.retryAfterSeconds;
  if (typeof seconds === "number" && seconds > 0) return Math.ceil(seconds);
  return error.code === ErrorCode.SERVICE_UNAVAILABLE ? STORE_RETRY_AFTER_SECONDS : undefined;
}
