// The REST write API for publishers: pushed records (`POST /api/v1/ingest/{slug}`, answered 202
// with the run that loads them), events (`POST /api/v1/ingest/{slug}/events` and `…/events/batch`,
// answered 202 with their ids once stored) and per-record corrections (`PUT`/`DELETE
// /api/v1/datasets/{slug}/records/{key}`). Same credentials and rate limits as every route (the
// server's `identify`); the rules live in the services. Errors are `{ error: { code, message } }`.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { encodeGlobalId } from "../graphql/relay.js";
import type { Caller } from "../identity/caller.js";
import { authorize } from "../identity/authorization.js";
import type { CorrectionResult } from "../ingest/corrections.service.js";
import type { EventsBody } from "../ingest/events.service.js";
import type { Services } from "../services.js";

export interface IngestRouteDeps {
  services: Services;
  identify: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  callerOf: (request: FastifyRequest) => Caller;
  /** INGEST_MAX_BYTES: the push route's body limit (413 beyond). */
  ingestMaxBytes: number;
}

type RecordParams = { Params: { slug: string; key: string } };
type SlugParams = { Params: { slug: string } };

const CORRECTION_RULES = ["PUBLISHER", "datasets:write"];
const PUSH_RULES = ["PUBLISHER", "pipelines:write"];

const corrected = (result: CorrectionResult) => ({
  changedRows: result.changedRows,
  version: result.dataset.version,
  rowCount: Number(result.dataset.rowCount),
});

export async function registerIngestRoutes(app: FastifyInstance, deps: IngestRouteDeps): Promise<void> {
  const { services } = deps;
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => deps.identify(request, reply);
  // The same role and scope rules as the GraphQL mutations, checked before the body is looked at.
  const caller = (request: FastifyRequest, rules: readonly string[]) => {
    const who = deps.callerOf(request);
    authorize(who, rules);
    return who;
  };

  app.post<{ Params: { slug: string } }>(
    "/api/v1/ingest/:slug",
    { preHandler, bodyLimit: deps.ingestMaxBytes },
    async (request, reply) => {
      const who = caller(request, PUSH_RULES);
      const ndjson = Buffer.isBuffer(request.body);
      const accepted = await services.push.ingestBody(who, request.params.slug, request.body, ndjson);
      return reply
        .status(202)
        .send({ runId: encodeGlobalId("PipelineRun", accepted.runId), records: accepted.records });
    },
  );

  // Events: written through the PUSH pipeline's steps in micro-batches, no run per request
  // (ingest/events.service.ts); 202 once stored, with each event's id.
  const events =
    (kind: "one" | "many") => async (request: FastifyRequest<SlugParams>, reply: FastifyReply) => {
      const who = caller(request, PUSH_RULES);
      const body: EventsBody = Buffer.isBuffer(request.body)
        ? { kind: "ndjson", bytes: request.body }
        : { kind, value: request.body };
      const key = request.headers["idempotency-key"];
      const accepted = await services.eventIngest.ingest(
        who,
        request.params.slug,
        body,
        typeof key === "string" ? key : undefined,
      );
      return reply.status(202).send(accepted);
    };
  app.post<SlugParams>(
    "/api/v1/ingest/:slug/events",
    { preHandler, bodyLimit: deps.ingestMaxBytes },
    events("one"),
  );
  app.post<SlugParams>(
    "/api/v1/ingest/:slug/events/batch",
    { preHandler, bodyLimit: deps.ingestMaxBytes },
    events("many"),
  );

  app.put<RecordParams>("/api/v1/datasets/:slug/records/:key", { preHandler }, async (request) => {
    const who = caller(request, CORRECTION_RULES);
    const { slug, key } = request.params;
    return corrected(await services.corrections.putByKey(who, slug, key, request.body));
  });

  app.delete<RecordParams>("/api/v1/datasets/:slug/records/:key", { preHandler }, async (request) => {
    const who = caller(request, CORRECTION_RULES);
    const { slug, key } = request.params;
    return corrected(await services.corrections.deleteByKey(who, slug, key));
  });
}
