// OAuth2-style token endpoint (RFC 6749 §4.3, resource owner password grant) for tools that
// speak OAuth2: the same short-lived bearer token as the `login` mutation.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError } from "../errors.js";
import type { Services } from "../services.js";

export async function registerAuthRoutes(
  app: FastifyInstance,
  deps: {
    services: Services;
    identify: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  },
): Promise<void> {
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string" },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  app.post("/auth/token", {
    // Counted like any anonymous call (per client IP): passwords cannot be guessed at speed.
    preHandler: async (request, reply) => deps.identify(request, reply),
    handler: async (request, reply) => {
      reply.header("cache-control", "no-store");
      const form = (request.body ?? {}) as Record<string, string | undefined>;
      if (form.grant_type !== "password") {
        return reply.status(400).send({ error: "unsupported_grant_type" });
      }
      if (!form.username || !form.password) {
        return reply
          .status(400)
          .send({ error: "invalid_request", error_description: "username and password required" });
      }
      try {
        const session = await deps.services.auth.login(form.username, form.password);
        return {
          access_token: session.token,
          token_type: "Bearer",
          expires_in: Math.round((session.expiresAt.getTime() - Date.now()) / 1000),
        };
      } catch (error) {
        if (error instanceof AppError && (error.code === "UNAUTHENTICATED" || error.code === "FORBIDDEN")) {
          return reply.status(400).send({ error: "invalid_grant", error_description: error.message });
        }
        throw error;
      }
    },
  });
}
