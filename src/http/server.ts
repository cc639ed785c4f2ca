import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import zlib from "node:zlib";
import { ApolloServer } from "@apollo/server";
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from "@as-integrations/fastify";
import compress from "@fastify/compress";
import cors from "@fastify/cors";
import {
  ApolloServerPluginCacheControlDisabled,
  ApolloServerPluginLandingPageDisabled,
} from "@apollo/server/plugin/disabled";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from "fastify";
import type { Redis } from "ioredis";
import type { Config } from "../config.js";
import { AppError, ErrorCode, HTTP_STATUS } from "../errors.js";
import type { Context } from "../graphql/context.js";
import { errorMaskingPlugin, keepOriginalError } from "../graphql/error-masking.js";
import { Loaders } from "../graphql/loaders.js";
import { metricsPlugin } from "../graphql/metrics-plugin.js";
import { costPlugin } from "../graphql/cost-plugin.js";
import { CostMeter } from "../records/read.service.js";
import { graphqlSchema } from "../graphql/schema.js";
import { anonymous, isAuthenticated, type Caller } from "../identity/caller.js";
import {
  RateLimiter,
  callerSubject,
  rateLimitHeaders,
  type RateLimitDecision,
  type RateLimitSubject,
} from "../identity/rate-limit.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Services } from "../services.js";
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from "../identity/request-signing.js";
import { checkReadiness, type Check } from "./readiness.js";
import { csrfRefusal, responseMediaType } from "./graphql-http.js";
import { registerEtags } from "./etag.js";
import { registerIde, wantsIde } from "./ide.js";
import { registerOpenApiGenerator, registerOpenApiRoutes } from "./openapi.js";
import { registerRestRoutes } from "./rest-routes.js";
import { registerPublishingRoutes } from "./publishing-routes.js";
import { httpCachingPlugin } from "../graphql/http-caching-plugin.js";
import { registerAuthRoutes } from "./auth-routes.js";
import { registerDataRoutes } from "./data-routes.js";
import { registerIngestRoutes } from "./ingest-routes.js";
import { registerMoneyRoutes } from "./money-routes.js";
import { registerSubscriptions } from "./subscriptions.js";
import type { LiveService } from "../subscriptions/live.service.js";
import { inputHygienePlugin, registerInputHygiene } from "./input-hygiene.js";
import { registerLoadShedding } from "./load-shedding.js";
import { retryAfterOf, storeUnavailable } from "../db/store-unavailable.js";

export interface HttpDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  services: Services;
  /** Rate-limit counters; null keeps them in this process (no Redis configured). */
  redis: Redis | null;
  readinessChecks: Record<string, Check>;
  live: LiveService;
}

const REQUEST_ID = /^[A-Za-z0-9._-]{8,128}$/;

export async function createHttpServer(deps: HttpDeps): Promise<FastifyInstance> {
  const { config, log, metrics, services } = deps;
  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    bodyLimit: config.BODY_LIMIT_BYTES,
    trustProxy: config.TRUST_PROXY,
    // A client-supplied id is kept when it looks like one, so logs join up across services.
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && REQUEST_ID.test(given) ? given : randomUUID();
    },
    forceCloseConnections: "idle",
    ...(config.TLS_CERT_FILE && config.TLS_KEY_FILE
      ? { https: { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE) } }
      : {}),
  });
  const limiter = new RateLimiter(deps.redis, { failureMode: config.RATE_LIMIT_FAILURE_MODE, log });

  // Fastify's own JSON parser (with its prototype-poisoning protection), keeping the raw bytes:
  // signed requests are verified over the body exactly as sent.
  const rawBodies = new WeakMap<FastifyRequest, Buffer>();
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer" }, (request, body, done) => {
    rawBodies.set(request, body as Buffer);
    parseJson(request, (body as Buffer).toString("utf8"), done);
  });
  // Pushed NDJSON is stored as sent and parsed line by line by its run (bad lines quarantined).
  app.addContentTypeParser("application/x-ndjson", { parseAs: "buffer" }, (request, body, done) => {
    rawBodies.set(request, body as Buffer);
    done(null, body);
  });

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  await registerLoadShedding(app, config, metrics);
  registerInputHygiene(app, config.INPUT_MAX_DEPTH);
  app.addHook("onResponse", async (request, reply) => {
    metrics.httpRequests.inc({
      method: request.method,
      route: request.routeOptions.url ?? "unmatched",
      status: String(reply.statusCode),
    });
  });
  // Errors outside GraphQL execution (authentication, rate limits, bodies) in the shape the route
  // speaks: GraphQL's `errors` array on /graphql, `{ error }` on REST routes.
  const errorBody = (request: FastifyRequest, fields: Record<string, unknown> & { message: string }) => {
    const { message, ...extensions } = fields;
    return request.url.startsWith("/graphql")
      ? { errors: [{ message, extensions }] }
      : { error: { ...extensions, message } };
  };
  app.setErrorHandler(async (error, request, reply) => {
    // GraphQL clients read errors from a non-2xx response only when it is the GraphQL media type.
    if (request.url.startsWith("/graphql")) reply.type(responseMediaType(header(request, "accept")));
    const known = error instanceof AppError ? error : storeUnavailable(error);
    if (known) {
      if (known !== error) request.log.warn({ err: error }, known.message);
      const retryAfter = retryAfterOf(known);
      if (retryAfter !== undefined) reply.header("retry-after", String(retryAfter));
      return reply
        .status(HTTP_STATUS[known.code])
        .send(errorBody(request, { ...known.fields, code: known.code, message: known.message }));
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      // Fastify's own client errors: oversized or malformed bodies, bad content types.
      return reply
        .status(status)
        .send(errorBody(request, { code: ErrorCode.BAD_USER_INPUT, message: (error as Error).message }));
    }
    request.log.error({ err: error }, "unexpected error in HTTP route");
    return reply.status(500).send(
      errorBody(request, {
        code: ErrorCode.INTERNAL_SERVER_ERROR,
        message: "Internal server error",
        requestId: request.id,
      }),
    );
  });

  const ipSubject = (request: FastifyRequest): RateLimitSubject => ({
    key: `ip:${request.ip}`,
    perMinute: config.ANONYMOUS_RATE_LIMIT_PER_MINUTE,
    perHour: null,
    perMonth: null,
  });
  const enforce = (decision: RateLimitDecision, reply: FastifyReply) => {
    reply.headers(rateLimitHeaders(decision));
    if (!decision.allowed) {
      throw new AppError("RATE_LIMITED", "Rate limit exceeded", {
        retryAfterSeconds: decision.retryAfterSeconds,
        window: decision.window,
      });
    }
  };
  const header = (request: FastifyRequest, name: string) => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };

  /**
   * Who is calling, counted against their plan's limit (per API key or user) or, for anonymous
   * callers and failed authentication, against the client IP, so that keys and passwords cannot
   * be guessed at speed.
   */
  const callers = new WeakMap<FastifyRequest, Caller>();
  const identify = async (request: FastifyRequest, reply: FastifyReply) => {
    let caller: Caller;
    try {
      caller = await services.auth.authenticate(
        { apiKey: header(request, "x-api-key"), authorization: header(request, "authorization") },
        {
          method: request.method,
          url: request.url,
          body: rawBodies.get(request) ?? Buffer.alloc(0),
          timestamp: header(request, TIMESTAMP_HEADER),
          signature: header(request, SIGNATURE_HEADER),
        },
      );
    } catch (error) {
      if (error instanceof AppError && error.code === "UNAUTHENTICATED") {
        enforce(await limiter.consume(ipSubject(request)), reply);
      }
      throw error;
    }
    const subject = isAuthenticated(caller) ? callerSubject(caller) : ipSubject(request);
    enforce(await limiter.consume(subject), reply);
    callers.set(request, caller);
  };

  // Credentials are headers, never cookies, so any origin may call with a key of its own: without
  // CORS_ORIGINS every origin is let in (without credentials mode); with it, only those origins,
  // which may also send credentialed requests. Preflights are answered for every route.
  const listed = config.CORS_ORIGINS.length > 0;
  await app.register(cors, {
    origin: listed ? config.CORS_ORIGINS : "*",
    credentials: listed,
    methods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"],
    maxAge: 600,
    exposedHeaders: [
      "x-request-id",
      "x-ratelimit-limit",
      "x-ratelimit-remaining",
      "x-ratelimit-reset",
      "retry-after",
      "x-credits-remaining",
      "x-credits-charged",
      "x-records",
      "x-next-cursor",
      "etag",
    ],
  });
  // Tags first, so that a 304 is decided on the uncompressed body, then compression for every
  // route, streamed exports included.
  registerEtags(app);
  await app.register(compress, {
    encodings: ["br", "gzip", "deflate"],
    customTypes: /^text\/|\+json|^application\/(?:json|x-ndjson|javascript|xml)/,
    // Brotli's default (11) costs seconds on a large body; 4 compresses about as well as gzip, faster.
    brotliOptions: { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } },
  });
  await registerOpenApiGenerator(app);

  const armor = new ApolloArmor({
    maxDepth: { n: config.GRAPHQL_MAX_DEPTH },
    maxAliases: { n: config.GRAPHQL_MAX_ALIASES },
    maxDirectives: { n: config.GRAPHQL_MAX_DIRECTIVES },
    // graphql-js counts tokens itself while parsing (parseOptions below); armor's plugin would
    // throw from a hook Apollo answers with a 500.
    maxTokens: { enabled: false },
    costLimit: { maxCost: config.GRAPHQL_MAX_COST },
    blockFieldSuggestion: { enabled: !config.GRAPHQL_INTROSPECTION },
  }).protect();
  const schema = graphqlSchema();
  const apollo = new ApolloServer<Context>({
    schema,
    introspection: config.GRAPHQL_INTROSPECTION,
    validationRules: armor.validationRules,
    allowBatchedHttpRequests: false,
    // Our own check (graphql-http.ts) also lets GETs through that ask for a JSON response.
    csrfPrevention: false,
    parseOptions: { maxTokens: config.GRAPHQL_MAX_TOKENS },
    includeStacktraceInErrorResponses: false,
    formatError: keepOriginalError,
    plugins: [
      ...(armor.plugins as never[]),
      fastifyApolloDrainPlugin(app),
      metricsPlugin(metrics),
      costPlugin(),
      ApolloServerPluginCacheControlDisabled(),
      // Apollo's landing page loads Sandbox from a CDN; browsers get our own GraphiQL instead.
      ApolloServerPluginLandingPageDisabled(),
      httpCachingPlugin(config.HTTP_CACHE_MAX_AGE_SECONDS),
      errorMaskingPlugin(metrics),
      inputHygienePlugin(config.INPUT_MAX_DEPTH),
    ],
  });
  await apollo.start();

  const sendIde = config.GRAPHQL_IDE ? registerIde(app) : null;
  app.route<{ Reply: string }>({
    url: "/graphql",
    method: ["GET", "POST"],
    preHandler: async (request, reply) => {
      if (sendIde && wantsIde(request)) return sendIde(reply);
      const refusal = csrfRefusal(request.method, request.headers);
      if (refusal) throw new AppError("BAD_USER_INPUT", refusal);
      await identify(request, reply);
    },
    handler: fastifyApolloHandler(apollo, {
      context: async (request) => {
        const caller = callers.get(request) ?? anonymous;
        return {
          requestId: request.id,
          log: request.log,
          caller,
          services,
          loaders: new Loaders(services, caller),
          meter: new CostMeter(),
          live: deps.live,
        };
      },
    }),
  });

  registerSubscriptions(app, {
    config,
    log,
    metrics,
    services,
    live: deps.live,
    limiter,
    schema,
    validationRules: armor.validationRules,
  });

  await registerAuthRoutes(app, { services, identify });
  const callerOf = (r: FastifyRequest) => callers.get(r) ?? anonymous;
  await registerDataRoutes(app, { services, identify, callerOf });
  await registerIngestRoutes(app, { services, identify, callerOf, ingestMaxBytes: config.INGEST_MAX_BYTES });
  await registerRestRoutes(app, { services, identify, callerOf });
  await registerPublishingRoutes(app, { services, identify, callerOf });
  await registerMoneyRoutes(app, { services, identify, callerOf, rawBodyOf: (r) => rawBodies.get(r) });
  registerOpenApiRoutes(app);

  app.get("/health", async () => ({ status: "ok" }));

  app.get("/ready", async (_request, reply) => {
    const report = await checkReadiness(deps.readinessChecks, 2000);
    return reply.status(report.status === "ok" ? 200 : 503).send(report);
  });

  app.get("/metrics", async (_request, reply) => {
    return reply.type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });

  return app;
}
