// Load shedding: past a bound, a request is refused at once with 503 SERVICE_UNAVAILABLE and
// Retry-After instead of joining a queue where it would wait seconds, hold memory and time out
// anyway. Two bounds per process (README "Load shedding"):
// - requests in flight (LOAD_MAX_IN_FLIGHT): counted from arrival until the response is closed,
//   streamed exports included;
// - queued work (LOAD_MAX_EVENT_LOOP_DELAY_MS): the event loop's delay, as @fastify/under-pressure
//   samples it, which grows with everything waiting for the CPU.
// Health, readiness and metrics are never shed: an operator must see a loaded server.
import underPressure from "@fastify/under-pressure";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Config } from "../config.js";
import { AppError, ErrorCode } from "../errors.js";
import type { Metrics } from "../observability/metrics.js";

type LoadConfig = Pick<
  Config,
  "LOAD_MAX_IN_FLIGHT" | "LOAD_MAX_EVENT_LOOP_DELAY_MS" | "LOAD_RETRY_AFTER_SECONDS"
>;

const NEVER_SHED = new Set(["/health", "/ready", "/metrics"]);
const exempt = (request: FastifyRequest) => NEVER_SHED.has(request.url.split("?")[0]!);

const shed = (retryAfterSeconds: number, reason: string) =>
  new AppError(ErrorCode.SERVICE_UNAVAILABLE, `The server is busy (${reason}); retry shortly`, {
    retryAfterSeconds,
  });

export async function registerLoadShedding(
  app: FastifyInstance,
  config: LoadConfig,
  metrics: Metrics,
): Promise<void> {
  const retryAfter = config.LOAD_RETRY_AFTER_SECONDS;
  if (config.LOAD_MAX_EVENT_LOOP_DELAY_MS > 0) {
    await app.register(underPressure, {
      maxEventLoopDelay: config.LOAD_MAX_EVENT_LOOP_DELAY_MS,
      retryAfter,
      // Rejecting hands the error to the server's error handler: the API's own 503 body.
      pressureHandler: async (request, _reply, type) => {
        if (exempt(request)) return;
        metrics.shedRequests.inc({ reason: type });
        throw shed(retryAfter, "queued work");
      },
    });
  }

  const limit = config.LOAD_MAX_IN_FLIGHT;
  if (limit <= 0) return;
  let inFlight = 0;
  app.addHook("onRequest", async (request, reply) => {
    if (exempt(request)) return;
    if (inFlight >= limit) {
      metrics.shedRequests.inc({ reason: "inFlight" });
      throw shed(retryAfter, "requests in flight");
    }
    inFlight++;
    metrics.requestsInFlight.set(inFlight);
    // 'close' comes once per response, whether sent, streamed to the end or cut by the client.
    reply.raw.once("close", () => {
      inFlight--;
      metrics.requestsInFlight.set(inFlight);
    });
  });
}
