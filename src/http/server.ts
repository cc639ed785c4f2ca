import { randomUUID } from "node:crypto";
import { ApolloServer } from "@apollo/server";
import { fastifyApolloDrainPlugin, fastifyApolloHandler } from "@as-integrations/fastify";
import cors from "@fastify/cors";
import { ApolloArmor } from "@escape.tech/graphql-armor";
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import type { Config } from "../config.js";
import { AppError, ErrorCode, HTTP_STATUS } from "../errors.js";
import type { Context } from "../graphql/context.js";
import { errorMaskingPlugin, keepOriginalError } from "../graphql/error-masking.js";
import { Loaders } from "../graphql/loaders.js";
import { metricsPlugin } from "../graphql/metrics-plugin.js";
import { graphqlSchema } from "../graphql/schema.js";
import { anonymous } from "../identity/caller.js";
import type { Logger } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import type { Services } from "../services.js";
import { checkReadiness, type Check } from "./readiness.js";

export interface HttpDeps {
  config: Config;
  log: Logger;
  metrics: Metrics;
  services: Services;
  readinessChecks: Record<string, Check>;
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
  });

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
  });
  app.addHook("onResponse", async (request, reply) => {
    metrics.httpRequests.inc({
      method: request.method,
      route: request.routeOptions.url ?? "unmatched",
      status: String(reply.statusCode),
    });
  });
  app.setErrorHandler(async (error, request, reply) => {
    if (error instanceof AppError) {
      return reply
        .status(HTTP_STATUS[error.code])
        .send({ error: { ...error.fields, code: error.code, message: error.message } });
    }
    const status = (error as { statusCode?: number }).statusCode;
    if (status && status >= 400 && status < 500) {
      // Fastify's own client errors: oversized or malformed bodies, bad content types.
      return reply
        .status(status)
        .send({ error: { code: ErrorCode.BAD_USER_INPUT, message: (error as Error).message } });
    }
    request.log.error({ err: error }, "unexpected error in HTTP route");
    return reply.status(500).send({
      error: {
        code: ErrorCode.INTERNAL_SERVER_ERROR,
        message: "Internal server error",
        requestId: request.id,
      },
    });
  });

  await app.register(cors, {
    origin: config.CORS_ORIGINS.length ? config.CORS_ORIGINS : false,
    credentials: true,
    exposedHeaders: ["x-request-id"],
  });

  const armor = new ApolloArmor({
    maxDepth: { n: config.GRAPHQL_MAX_DEPTH },
    maxAliases: { n: config.GRAPHQL_MAX_ALIASES },
    maxDirectives: { n: config.GRAPHQL_MAX_DIRECTIVES },
    maxTokens: { n: config.GRAPHQL_MAX_TOKENS },
    costLimit: { maxCost: config.GRAPHQL_MAX_COST },
    blockFieldSuggestion: { enabled: !config.GRAPHQL_INTROSPECTION },
  }).protect();
  const apollo = new ApolloServer<Context>({
    schema: graphqlSchema(),
    introspection: config.GRAPHQL_INTROSPECTION,
    validationRules: armor.validationRules,
    allowBatchedHttpRequests: false,
    includeStacktraceInErrorResponses: false,
    formatError: keepOriginalError,
    plugins: [
      ...(armor.plugins as never[]),
      fastifyApolloDrainPlugin(app),
      metricsPlugin(metrics),
      errorMaskingPlugin(metrics),
    ],
  });
  await apollo.start();

  app.route({
    url: "/graphql",
    method: ["GET", "POST", "OPTIONS"],
    handler: fastifyApolloHandler(apollo, {
      context: async (request) => ({
        requestId: request.id,
        log: request.log,
        caller: anonymous,
        services,
        loaders: new Loaders(services, anonymous),
      }),
    }),
  });

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
