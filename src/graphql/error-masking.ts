// Clients see our AppErrors (code, message, structured fields) and graphql-js's own request
// errors as they are. Everything else is logged whole and replaced by a generic
// INTERNAL_SERVER_ERROR carrying the request id, never a stack, SQL text or driver message.
import type { ApolloServerPlugin } from "@apollo/server";
import { GraphQLError, type GraphQLFormattedError } from "graphql";
import { AppError, ErrorCode, REQUEST_ERROR_CODES } from "../errors.js";
import { retryAfterOf, storeUnavailable } from "../db/store-unavailable.js";
import { statusForErrors } from "../http/graphql-http.js";
import type { Metrics } from "../observability/metrics.js";
import type { Context } from "./context.js";

/** Our AppError behind a GraphQL error, a store outage translated into one included. */
function appErrorOf(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  if (error instanceof GraphQLError) return appErrorOf(error.originalError);
  return storeUnavailable(error);
}

/**
 * Errors raised by graphql-js, Apollo or the query-limit rules while parsing and validating
 * (possibly wrapped by Apollo in another GraphQLError). A resolver's exception is wrapped too,
 * but its chain ends in a plain Error: that one is internal.
 */
function isRequestError(error: GraphQLError): boolean {
  // During execution (errors with a path) only AppErrors are the client's: anything else, a
  // value the schema cannot serialize included, is ours.
  if (error.path !== undefined) return false;
  let current: GraphQLError = error;
  while (current.originalError) {
    if (!(current.originalError instanceof GraphQLError)) return false;
    current = current.originalError;
  }
  const code = error.extensions?.code ?? current.extensions?.code;
  return code === undefined || (typeof code === "string" && REQUEST_ERROR_CODES.has(code));
}

/** Errors the client caused and sees as they are; anything else is ours, masked and logged. */
export function isClientError(error: GraphQLError): boolean {
  return appErrorOf(error) !== undefined || isRequestError(error);
}

/** The client-facing form of one error. `requestId` is attached to masked errors. */
export function formatClientError(error: GraphQLError, requestId: string): GraphQLFormattedError {
  const app = appErrorOf(error);
  const base = { locations: error.locations, path: error.path };
  if (app) {
    return { ...base, message: app.message, extensions: { ...app.fields, code: app.code } };
  }
  if (isRequestError(error)) {
    return {
      ...base,
      message: error.message,
      extensions: { code: error.extensions?.code ?? ErrorCode.BAD_USER_INPUT },
    };
  }
  return {
    ...base,
    message: "Internal server error",
    extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR, requestId },
  };
}

export function errorMaskingPlugin(metrics: Metrics): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async didEncounterErrors({ errors, contextValue, operationName, operation }) {
          for (const error of errors) {
            const outage = appErrorOf(error);
            if (outage?.code === ErrorCode.SERVICE_UNAVAILABLE && outage.cause) {
              contextValue.log.warn({ err: outage.cause, path: error.path, operationName }, outage.message);
            }
            if (isClientError(error)) continue;
            contextValue.log.error(
              {
                err: error.originalError ?? error,
                path: error.path,
                operationName,
                operationType: operation?.operation,
                caller: describeCaller(contextValue),
              },
              "unexpected error in GraphQL operation",
            );
          }
        },
        async willSendResponse({ response, contextValue }) {
          if (response.body.kind !== "single") return;
          const errors = response.body.singleResult.errors;
          if (!errors) return;
          // Apollo has already run formatError (which keeps the original error reachable);
          // here the request id is known, so masking happens here.
          response.body.singleResult.errors = errors.map((formatted) => {
            const original = (formatted as { [ORIGINAL]?: GraphQLError })[ORIGINAL];
            const masked = original ? formatClientError(original, contextValue.requestId) : formatted;
            metrics.graphqlErrors.inc({ code: String(masked.extensions?.code ?? "UNKNOWN") });
            return masked;
          });
          // One status per code, whether the error came before execution or from a resolver.
          const status = statusForErrors(
            response.body.singleResult.errors.map((e) => String(e.extensions?.code)),
            response.body.singleResult.data != null,
          );
          // Apollo's own client-error statuses (400 for validation, 405 for a mutation by GET) stay.
          const current = response.http.status ?? 200;
          if (status !== undefined && (current === 200 || current >= 500)) response.http.status = status;
          // A store outage is the one answer a client should retry: 503 with Retry-After.
          const outage = errors
            .map((formatted) => appErrorOf((formatted as { [ORIGINAL]?: GraphQLError })[ORIGINAL]))
            .find((error) => error?.code === ErrorCode.SERVICE_UNAVAILABLE);
          if (outage) {
            response.http.status = 503;
            response.http.headers.set("retry-after", String(retryAfterOf(outage)));
          }
        },
      };
    },
  };
}

const ORIGINAL = Symbol("originalError");

/** Apollo's formatError hook: keeps the original error reachable for the plugin above. */
export function keepOriginalError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  const original =
    error instanceof GraphQLError
      ? error
      : new GraphQLError(formatted.message, { originalError: error as Error });
  return Object.defineProperty({ ...formatted }, ORIGINAL, { value: original, enumerable: false });
}

function describeCaller({ caller }: Context): Record<string, unknown> {
  if (caller.kind === "user")
    return { kind: caller.kind, accountId: caller.accountId, userId: caller.userId };
  if (caller.kind === "apiKey")
    return { kind: caller.kind, accountId: caller.accountId, apiKeyId: caller.apiKeyId };
  return { kind: caller.kind };
}
