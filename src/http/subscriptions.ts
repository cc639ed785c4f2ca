// GraphQL subscriptions over WebSocket (the graphql-transport-ws protocol of graphql-ws), on the
// HTTP API's own port and path, /graphql. A connection authenticates once, in `connection_init`,
// by the rules of HTTP (API key or dashboard token, scopes, suspended accounts, rate limits);
// each subscription is parsed and validated under the same limits as a query, and its errors are
// masked the same way. Connections whose credential lapses are closed: see `closeLapsed`.
import { randomUUID } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import {
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  getOperationAST,
  parse,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLSchema,
  type ValidationRule,
} from "graphql";
import { CloseCode, type SubscribePayload } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import type { FastifyInstance } from "fastify";
import { WebSocketServer, type WebSocket } from "ws";
import type { Config } from "../config.js";
import { AppError } from "../errors.js";
import type { Context } from "../graphql/context.js";
import { formatClientError, isClientError } from "../graphql/error-masking.js";
import { Loaders } from "../graphql/loaders.js";
import type { LiveSession } from "../identity/auth.service.js";
import { isAuthenticated } from "../identity/caller.js";
import { callerSubject, type RateLimiter, type RateLimitSubject } from "../identity/rate-limit.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../identity/request-signing.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { CostMeter } from "../records/read.service.js";
import type { Services } from "../services.js";
import type { LiveService } from "../subscriptions/live.service.js";
import { documentProblem, inputProblem } from "./input-hygiene.js";
import { storeUnavailable } from "../db/store-unavailable.js";

/**
 * Close codes, in graphql-ws's 4xxx range after the HTTP status of the same error: 4401 the
 * credential is missing, invalid, revoked or expired; 4403 the account is suspended; 4429 the
 * rate limit refused the connection; 4503 a dependency is down; 4500 anything else.
 */
export const LIVE_CLOSE_CODES = {
  UNAUTHENTICATED: CloseCode.Unauthorized,
  FORBIDDEN: CloseCode.Forbidden,
  RATE_LIMITED: 4429,
  SERVICE_UNAVAILABLE: 4503,
  INTERNAL_SERVER_ERROR: CloseCode.InternalServerError,
} as const;

export interface SubscriptionDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  services: Services;
  live: LiveService;
  limiter: RateLimiter;
  schema: GraphQLSchema;
  /** The query limits (graphql-armor's depth, aliases, directives and cost rules). */
  validationRules: readonly ValidationRule[];
}

interface Connection {
  id: string;
  socket: WebSocket;
  session: LiveSession;
  subject: RateLimitSubject;
  log: Logger;
}

/** Reasons travel in a close frame, at most 123 bytes. */
const closeReason = (message: string) => Buffer.from(message).subarray(0, 123).toString("utf8");

function closeWith(socket: WebSocket, cause: unknown): void {
  const error = storeUnavailable(cause) ?? cause;
  const codes: Partial<Record<string, number>> = LIVE_CLOSE_CODES;
  const code =
    error instanceof AppError ? (codes[error.code] ?? 4400) : LIVE_CLOSE_CODES.INTERNAL_SERVER_ERROR;
  socket.close(code, closeReason(error instanceof AppError ? error.message : "Internal server error"));
}

const stringParam = (params: Record<string, unknown>, ...names: string[]) => {
  for (const name of names) if (typeof params[name] === "string") return params[name];
  return undefined;
};

const header = (request: IncomingMessage, name: string) => {
  const value = request.headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/** The client's address as Fastify tells it for HTTP: behind a trusted proxy, X-Forwarded-For's first. */
function clientIp(request: IncomingMessage, trustProxy: boolean): string {
  const forwarded = trustProxy ? header(request, "x-forwarded-for")?.split(",")[0]?.trim() : undefined;
  return forwarded || (request.socket.remoteAddress ?? "unknown");
}

/** Mounts the WebSocket endpoint on the Fastify server; closed with it. */
export function registerSubscriptions(app: FastifyInstance, deps: SubscriptionDeps): void {
  const { config, log, services, live, limiter, schema } = deps;
  const rules = [
    ...specifiedRules,
    ...deps.validationRules,
    ...(config.GRAPHQL_INTROSPECTION ? [] : [NoSchemaIntrospectionCustomRule]),
  ];
  const connections = new Map<WebSocket, Connection>();
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.BODY_LIMIT_BYTES });

  app.server.on("upgrade", (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const path = (request.url ?? "").split("?")[0];
    if (path !== "/graphql") {
      socket.end("HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => wss.emit("connection", ws, request));
  });

  const refuse = (socket: WebSocket, error: unknown, context: Record<string, unknown> = {}) => {
    if (!(error instanceof AppError)) {
      const outage = storeUnavailable(error);
      if (outage) log.warn({ err: error, ...context }, outage.message);
      else log.error({ err: error, ...context }, "live connection failed");
    }
    closeWith(socket, error);
    return false as const;
  };

  const consume = async (subject: RateLimitSubject) => {
    const decision = await limiter.consume(subject);
    if (!decision.allowed) {
      throw new AppError("RATE_LIMITED", `Rate limit exceeded; retry in ${decision.retryAfterSeconds}s`, {
        retryAfterSeconds: decision.retryAfterSeconds,
        window: decision.window,
      });
    }
  };

  const server = useServer<Record<string, unknown>, { socket: WebSocket; request: IncomingMessage }>(
    {
      // Close reasons never carry internal error messages.
      isProd: true,
      async onConnect(ctx) {
        const { socket, request } = ctx.extra;
        const params = ctx.connectionParams ?? {};
        const apiKey = stringParam(params, "x-api-key", "X-API-Key");
        const authorization = stringParam(params, "authorization", "Authorization");
        const ip = clientIp(request, config.TRUST_PROXY);
        try {
          if (apiKey === undefined && authorization === undefined) {
            throw new AppError(
              "UNAUTHENTICATED",
              'Authenticate in connection_init: { "x-api-key": ... } or { "authorization": "Bearer ..." }',
            );
          }
          let caller;
          try {
            caller = await services.auth.authenticate(
              { apiKey, authorization },
              // Keys that require signed requests sign the upgrade request (GET /graphql, no body).
              {
                method: "GET",
                url: request.url ?? "/graphql",
                body: Buffer.alloc(0),
                timestamp: header(request, TIMESTAMP_HEADER),
                signature: header(request, SIGNATURE_HEADER),
              },
            );
          } catch (error) {
            // Failed authentication counts against the client IP, as over HTTP.
            if (error instanceof AppError && error.code === "UNAUTHENTICATED") {
              await consume({
                key: `ip:${ip}`,
                perMinute: config.ANONYMOUS_RATE_LIMIT_PER_MINUTE,
                perHour: null,
                perMonth: null,
              });
            }
            throw error;
          }
          if (!isAuthenticated(caller)) throw new AppError("UNAUTHENTICATED", "Authentication required");
          const subject = callerSubject(caller);
          await consume(subject);
          const id = randomUUID();
          connections.set(socket, {
            id,
            socket,
            session: { caller, token: authorization?.replace(/^Bearer\s+/i, "") },
            subject,
            log: log.child({ connectionId: id, accountId: caller.accountId }),
          });
          deps.metrics.liveConnections.set(connections.size);
          return true;
        } catch (error) {
          return refuse(socket, error, { ip });
        }
      },
      onClose(ctx) {
        connections.delete(ctx.extra.socket);
        deps.metrics.liveConnections.set(connections.size);
      },
      onOperation() {
        deps.metrics.liveSubscriptions.set(live.active);
      },
      onComplete() {
        deps.metrics.liveSubscriptions.set(live.active);
      },
      async onSubscribe(ctx, id, payload: SubscribePayload) {
        const connection = connections.get(ctx.extra.socket);
        if (!connection) return [new GraphQLError("Not connected")];
        try {
          await consume(connection.subject);
        } catch (error) {
          return [new GraphQLError((error as Error).message, { originalError: error as Error })];
        }
        let document: DocumentNode;
        try {
          document = parse(payload.query, { maxTokens: config.GRAPHQL_MAX_TOKENS });
        } catch (error) {
          return [requestError(error as GraphQLError, "GRAPHQL_PARSE_FAILED")];
        }
        const errors = validate(schema, document, rules);
        if (errors.length > 0) {
          return errors.map((e) =>
            requestError(e, "GRAPHQL_VALIDATION_FAILED", !config.GRAPHQL_INTROSPECTION),
          );
        }
        const hostile =
          documentProblem(document, config.INPUT_MAX_DEPTH) ??
          inputProblem(payload.variables, config.INPUT_MAX_DEPTH, "variables");
        if (hostile) return [requestError(new GraphQLError(`Invalid input: ${hostile}`), "BAD_USER_INPUT")];
        const operation = getOperationAST(document, payload.operationName);
        if (operation && operation.operation !== "subscription") {
          return [
            requestError(
              new GraphQLError("Only subscriptions go over WebSocket; send queries and mutations over HTTP"),
              "BAD_USER_INPUT",
            ),
          ];
        }
        const { caller } = connection.session;
        const context: Context = {
          requestId: `${connection.id}:${id}`,
          log: connection.log.child({
            subscriptionId: id,
            operationName: payload.operationName,
          }) as Context["log"],
          caller,
          services,
          loaders: new Loaders(services, caller),
          meter: new CostMeter(),
          live,
        };
        return {
          schema,
          document,
          operationName: payload.operationName,
          variableValues: payload.variables,
          contextValue: context,
        };
      },
      onNext(ctx, id, _payload, args, result) {
        return masked(connections.get(ctx.extra.socket), id, result as ExecutionResult);
      },
      onError(ctx, id, _payload, errors) {
        const connection = connections.get(ctx.extra.socket);
        return errors.map((error) => mask(connection, id, error));
      },
    },
    wss,
    config.SUBSCRIPTION_KEEPALIVE_SECONDS * 1000,
  );

  const mask = (connection: Connection | undefined, id: string, error: GraphQLError) => {
    const requestId = `${connection?.id ?? "unknown"}:${id}`;
    if (!isClientError(error)) {
      (connection?.log ?? log).error(
        { err: error.originalError ?? error, path: error.path, subscriptionId: id },
        "unexpected error in GraphQL subscription",
      );
    }
    const formatted = formatClientError(error, requestId);
    deps.metrics.graphqlErrors.inc({ code: String(formatted.extensions?.code ?? "UNKNOWN") });
    return formatted;
  };

  const masked = (connection: Connection | undefined, id: string, result: ExecutionResult) =>
    result.errors
      ? { ...result, errors: result.errors.map((error) => mask(connection, id, error)) }
      : undefined;

  /**
   * Credentials are checked once per connection, then again every SUBSCRIPTION_RECHECK_SECONDS
   * for all connections at once: a connection whose key was revoked, expired or rotated out,
   * whose token expired or whose account was suspended meanwhile is closed (4401, 4403).
   */
  const closeLapsed = async () => {
    const open = [...connections.values()];
    if (open.length === 0) return;
    const refusals = await services.auth.lapsed(open.map((c) => c.session));
    refusals.forEach((refusal, i) => {
      const connection = open[i]!;
      if (!refusal) return;
      connection.log.info({ reason: refusal.message }, "live connection closed: credential lapsed");
      connections.delete(connection.socket);
      deps.metrics.liveConnections.set(connections.size);
      closeWith(connection.socket, refusal);
    });
  };
  // One check at a time; a revocation that arrives during a check runs one more after it.
  let checking = false;
  let again = false;
  const recheck = () => {
    if (checking) {
      again = true;
      return;
    }
    checking = true;
    closeLapsed()
      .catch((err: unknown) => log.warn({ err }, "could not recheck live connections; keeping them"))
      .finally(() => {
        checking = false;
        if (again) {
          again = false;
          recheck();
        }
      });
  };
  const timer = setInterval(recheck, config.SUBSCRIPTION_RECHECK_SECONDS * 1000);
  timer.unref();
  const stopHearingRevocations = live.onAccessRevoked(recheck);

  app.addHook("preClose", async () => {
    clearInterval(timer);
    await stopHearingRevocations();
    // Clients are told to come back elsewhere (1001 Going Away); their streams end. Those that do
    // not complete the closing handshake promptly are cut off rather than holding up shutdown.
    const cutOff = setTimeout(() => wss.clients.forEach((socket) => socket.terminate()), 1000);
    await server.dispose();
    clearTimeout(cutOff);
  });
}

/** graphql-js's own errors about the request, with the code Apollo gives them over HTTP. */
function requestError(error: GraphQLError, code: string, hideSuggestions = false): GraphQLError {
  const message = hideSuggestions ? error.message.replace(/ ?Did you mean .*\?$/, "") : error.message;
  return new GraphQLError(message, { nodes: error.nodes, extensions: { code } });
}
