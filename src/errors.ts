// The catalogue of error codes a client can act on. Every error we raise on purpose is an
// AppError with one of these codes; anything else is masked as INTERNAL_SERVER_ERROR for clients
// (graphql/error-masking.ts for GraphQL, http/errors.ts for REST) and logged whole.

export const ErrorCode = {
  /** No credentials, or credentials that are invalid, expired or revoked. */
  UNAUTHENTICATED: "UNAUTHENTICATED",
  /** Valid caller without the role, scope or entitlement the operation needs. */
  FORBIDDEN: "FORBIDDEN",
  /** Malformed arguments: forged cursors or ids, out-of-range page sizes, invalid values. */
  BAD_USER_INPUT: "BAD_USER_INPUT",
  /** The addressed object does not exist, or the caller may not know it exists. */
  NOT_FOUND: "NOT_FOUND",
  /** The account cannot pay for the operation; carries `required` and `balance`. */
  INSUFFICIENT_CREDITS: "INSUFFICIENT_CREDITS",
  /**
   * The API key's own spend limit (per day or month) would be passed; carries `period`, `limit`,
   * `spent`, `required`. The account's other keys are not affected.
   */
  SPEND_LIMIT_EXCEEDED: "SPEND_LIMIT_EXCEEDED",
  /** Over the plan's rate or quota; carries `retryAfterSeconds`. */
  RATE_LIMITED: "RATE_LIMITED",
  /** The write conflicts with existing state (unique value taken, run already in progress). */
  CONFLICT: "CONFLICT",
  /** A dependency (database, ClickHouse, Redis) is unavailable; safe to retry later. */
  SERVICE_UNAVAILABLE: "SERVICE_UNAVAILABLE",
  /** Anything unexpected. The message is generic; `requestId` finds the full log entry. */
  INTERNAL_SERVER_ERROR: "INTERNAL_SERVER_ERROR",
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes produced by graphql-js and Apollo themselves for malformed requests; shown as they are. */
export const REQUEST_ERROR_CODES: ReadonlySet<string> = new Set([
  "GRAPHQL_PARSE_FAILED",
  "GRAPHQL_VALIDATION_FAILED",
  "BAD_USER_INPUT",
  "BAD_REQUEST",
  "PERSISTED_QUERY_NOT_FOUND",
  "PERSISTED_QUERY_NOT_SUPPORTED",
  "OPERATION_RESOLUTION_FAILURE",
]);

/** HTTP status for REST responses carrying each code. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  INSUFFICIENT_CREDITS: 402,
  SPEND_LIMIT_EXCEEDED: 402,
  RATE_LIMITED: 429,
  CONFLICT: 409,
  SERVICE_UNAVAILABLE: 503,
  INTERNAL_SERVER_ERROR: 500,
};

/**
 * An error whose message, code and fields are safe to show to the client. Services throw it;
 * they import nothing from GraphQL, so REST routes and jobs use the same errors.
 */
export class AppError extends Error {
  constructor(
    readonly code: Exclude<ErrorCode, "INTERNAL_SERVER_ERROR">,
    message: string,
    readonly fields: Record<string, unknown> = {},
    options: { cause?: unknown } = {},
  ) {
    super(message, options);
    this.name = "AppError";
  }
}

export const badInput = (message: string, fields: Record<string, unknown> = {}) =>
  new AppError(ErrorCode.BAD_USER_INPUT, message, fields);

export const notFound = (what: string) => new AppError(ErrorCode.NOT_FOUND, `${what} not found`);

export const conflict = (message: string, fields: Record<string, unknown> = {}) =>
  new AppError(ErrorCode.CONFLICT, message, fields);
