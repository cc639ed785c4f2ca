// REST for publishers' sources and pipelines, matching the GraphQL API: the same services, the same
// role and scope rules (`authorize` with the resolvers' rules), the same read scope (ModelReader,
// as node(id:) and the connections), ids that are the GraphQL global ids. Declared with JSON
// schemas, so they are in the OpenAPI document (/openapi.json) next to the reads (rest-routes.ts).
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { notFound } from "../errors.js";
import { decodeGlobalId, encodeGlobalId } from "../graphql/relay.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PipelineInput, PipelineUpdate } from "../pipelines/pipeline.service.js";
import { Pipeline, PipelineLog, PipelineRun } from "../pipelines/pipeline.types.js";
import type { Page } from "../pagination.js";
import type { SourceInput, SourceUpdate } from "../sources/source.service.js";
import { Source } from "../sources/source.types.js";
import { errorBody as error, type RestRouteDeps } from "./rest-routes.js";

/** The resolvers' rules (@Authorized on SourceResolver and PipelineResolver). */
const READ = ["pipelines:read"];
const WRITE = ["PUBLISHER", "pipelines:write"];

const errors = { 400: error, 401: error, 403: error, 404: error, 409: error, 429: error, 503: error };

const nullable = (type: string, extra: Record<string, unknown> = {}) => ({ type: [type, "null"], ...extra });
const time = { type: "string", format: "date-time" } as const;
const json = { description: "Any JSON value." } as const;
const object = { type: "object", additionalProperties: true } as const;

const source = {
  type: "object",
  required: ["id", "name", "type", "config", "hasSecrets", "schedule", "createdAt", "updatedAt"],
  properties: {
    id: { type: "string", description: "The GraphQL global id." },
    name: { type: "string" },
    type: { type: "string", enum: ["FILE", "HTTP", "POSTGRES", "PUSH", "S3", "SFTP", "STREAM"] },
    config: { ...object, description: "The connector's non-secret settings." },
    hasSecrets: { type: "boolean", description: "Secrets are stored (never returned)." },
    schedule: nullable("string", { description: "Cron expression (5 fields, UTC)." }),
    createdAt: time,
    updatedAt: time,
  },
} as const;

const pipelineSettings = {
  name: { type: "string" },
  mode: { type: "string", enum: ["FULL_REFRESH", "INCREMENTAL"] },
  schedule: nullable("string"),
  steps: { ...json, description: "The declarative steps (README, Build a pipeline)." },
  newFieldPolicy: { type: "string", enum: ["ADD_COLUMN", "FAIL", "IGNORE"] },
  duplicateKeys: { type: "string", enum: ["FIRST_WINS", "LAST_WINS", "QUARANTINE"] },
  allowEmptyKeys: { type: "boolean" },
  rowKeyColumn: nullable("string"),
  minLiveRowRatio: { type: "number", minimum: 0, maximum: 1 },
} as const;

const pipeline = {
  type: "object",
  required: ["id", "sourceId", "datasetId", "name", "mode", "enabled", "steps", "createdAt", "updatedAt"],
  properties: {
    id: { type: "string", description: "The GraphQL global id." },
    sourceId: { type: "string" },
    datasetId: { type: "string" },
    ...pipelineSettings,
    enabled: { type: "boolean", description: "Started: runs on its schedule." },
    createdAt: time,
    updatedAt: time,
  },
} as const;

const count = { type: "integer", minimum: 0 } as const;
const run = {
  type: "object",
  required: ["id", "pipelineId", "status", "trigger", "rowsRead", "rowsWritten", "rowsRejected", "createdAt"],
  properties: {
    id: { type: "string", description: "The GraphQL global id." },
    pipelineId: { type: "string" },
    status: { type: "string", enum: ["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"] },
    trigger: { type: "string", enum: ["MANUAL", "PUSH", "SCHEDULE", "STREAM"] },
    startedAt: nullable("string", { format: "date-time" }),
    finishedAt: nullable("string", { format: "date-time" }),
    progress: nullable("number", { description: "0..1 when the source can tell." }),
    rowsRead: count,
    rowsWritten: count,
    rowsRejected: count,
    rowsFiltered: count,
    rowsDuplicate: count,
    bytesRead: count,
    error: nullable("string"),
    newFields: { type: "array", items: { type: "string" } },
    createdAt: time,
  },
} as const;

const log = {
  type: "object",
  required: ["id", "runId", "level", "message", "createdAt"],
  properties: {
    id: { type: "string" },
    runId: { type: "string" },
    level: { type: "string", enum: ["DEBUG", "INFO", "WARN", "ERROR"] },
    message: { type: "string" },
    data: json,
    createdAt: time,
  },
} as const;

const sourceMetrics = {
  type: "object",
  required: ["pipelines", "runs", "failedRuns", "rowsWritten", "rowsRejected"],
  properties: {
    pipelines: count,
    runs: count,
    failedRuns: count,
    rowsWritten: count,
    rowsRejected: count,
    lastSyncAt: nullable("string", { format: "date-time" }),
    lastStatus: nullable("string"),
    lastError: nullable("string"),
    stream: { ...json, description: "STREAM sources: what the consuming worker last reported." },
  },
} as const;

const listOf = (item: object) => ({
  type: "object",
  required: ["data", "next_cursor"],
  properties: { data: { type: "array", items: item }, next_cursor: { type: ["string", "null"] } },
});
const listQuery = {
  type: "object",
  properties: { limit: { type: "integer", minimum: 1, default: 20 }, cursor: { type: "string" } },
  additionalProperties: false,
} as const;
const idParam = {
  type: "object",
  required: ["id"],
  properties: { id: { type: "string", description: "The GraphQL global id." } },
} as const;
const security = [{ apiKey: [] }];

type Id = { Params: { id: string } };
type List = { Querystring: { limit: number; cursor?: string } };

const pipelineOut = (row: Parameters<typeof Pipeline.from>[0]) => ({
  ...Pipeline.from(row),
  sourceId: encodeGlobalId("Source", row.sourceId),
  datasetId: encodeGlobalId("Dataset", row.datasetId),
});
const runOut = (row: Parameters<typeof PipelineRun.from>[0]) => ({
  ...PipelineRun.from(row),
  pipelineId: encodeGlobalId("Pipeline", row.pipelineId),
});
const logOut = (row: Parameters<typeof PipelineLog.from>[0]) => ({
  ...PipelineLog.from(row),
  runId: encodeGlobalId("PipelineRun", row.runId),
});

function listed<Row, Out>(page: Page<Row>, map: (row: Row) => Out) {
  return { data: page.items.map(map), next_cursor: page.hasNextPage ? (page.cursors.at(-1) ?? null) : null };
}

export async function registerPublishingRoutes(app: FastifyInstance, deps: RestRouteDeps): Promise<void> {
  const { sources, pipelines } = deps.services;
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => deps.identify(request, reply);
  const caller = (request: FastifyRequest, rules: readonly string[]): Caller => {
    const who = deps.callerOf(request);
    authorize(who, rules);
    return who;
  };
  const page = (request: FastifyRequest<List>) => ({
    first: request.query.limit,
    after: request.query.cursor ?? null,
  });
  const route = (operationId: string, tag: string, summary: string, schema: Record<string, unknown>) => ({
    preHandler,
    schema: { operationId, tags: [tag], summary, security, ...schema },
  });
  const sourceId = (id: string) => decodeGlobalId(id, ["Source"]).id;
  const pipelineId = (id: string) => decodeGlobalId(id, ["Pipeline"]).id;
  /** One row the caller may read (the read scope of node(id:)), or NOT_FOUND. */
  const visible = async <Row>(rows: Promise<(Row | null)[]>, what: string): Promise<Row> => {
    const [row] = await rows;
    if (!row) throw notFound(what);
    return row;
  };
  const ownSource = (who: Caller, id: string) =>
    visible(sources.sources.byIds(who, [sourceId(id)]), "Source");
  const ownPipeline = (who: Caller, id: string) =>
    visible(pipelines.pipelines.byIds(who, [pipelineId(id)]), "Pipeline");

  // ─── Sources ───────────────────────────────────────────────────────────────
  app.get<List>(
    "/api/v1/sources",
    route("listSources", "sources", "Sources the caller may see, oldest first (as `sources`).", {
      querystring: listQuery,
      response: { 200: listOf(source), ...errors },
    }),
    async (request) => listed(await sources.sources.page(caller(request, READ), page(request)), Source.from),
  );

  app.post<{ Body: SourceInput }>(
    "/api/v1/sources",
    route("createSource", "sources", "A new source; its secrets are encrypted and never returned.", {
      body: {
        type: "object",
        required: ["name", "type", "config"],
        properties: {
          name: { type: "string" },
          type: source.properties.type,
          config: object,
          secrets: { ...object, description: "Tokens, passwords, keys: write-only." },
          schedule: nullable("string"),
        },
        additionalProperties: false,
      },
      response: { 201: source, ...errors },
    }),
    async (request, reply) =>
      reply.status(201).send(Source.from(await sources.create(caller(request, WRITE), request.body))),
  );

  app.get<Id>(
    "/api/v1/sources/:id",
    route("getSource", "sources", "One source (as node(id:)).", {
      params: idParam,
      response: { 200: source, ...errors },
    }),
    async (request) => Source.from(await ownSource(caller(request, READ), request.params.id)),
  );

  app.patch<Id & { Body: SourceUpdate }>(
    "/api/v1/sources/:id",
    route("updateSource", "sources", "Changes name, config, secrets or schedule; fields left out stay.", {
      params: idParam,
      body: {
        type: "object",
        properties: {
          name: { type: "string" },
          config: object,
          secrets: nullable("object", { additionalProperties: true }),
          schedule: nullable("string"),
        },
        additionalProperties: false,
      },
      response: { 200: source, ...errors },
    }),
    async (request) =>
      Source.from(await sources.update(caller(request, WRITE), sourceId(request.params.id), request.body)),
  );

  app.delete<Id>(
    "/api/v1/sources/:id",
    route("deleteSource", "sources", "Removes the source from every list; its pipelines' history stays.", {
      params: idParam,
      response: { 200: source, ...errors },
    }),
    async (request) => Source.from(await sources.delete(caller(request, WRITE), sourceId(request.params.id))),
  );

  app.post<Id>(
    "/api/v1/sources/:id/sync",
    route("syncSource", "sources", "Runs every started pipeline of the source now (as `syncSource`).", {
      params: idParam,
      response: { 202: { type: "array", items: run }, ...errors },
    }),
    async (request, reply) => {
      const runs = await pipelines.syncSource(caller(request, WRITE), sourceId(request.params.id));
      return reply.status(202).send(runs.map(runOut));
    },
  );

  app.get<Id>(
    "/api/v1/sources/:id/metrics",
    route("getSourceMetrics", "sources", "How the source's syncs have gone (as `Source.metrics`).", {
      params: idParam,
      response: { 200: sourceMetrics, ...errors },
    }),
    async (request) => {
      const row = await ownSource(caller(request, READ), request.params.id);
      const m = await pipelines.sourceMetrics(row.id);
      return { ...m, rowsWritten: Number(m.rowsWritten), rowsRejected: Number(m.rowsRejected) };
    },
  );

  // ─── Pipelines ─────────────────────────────────────────────────────────────
  app.get<List>(
    "/api/v1/pipelines",
    route("listPipelines", "pipelines", "Pipelines the caller may see, oldest first (as `pipelines`).", {
      querystring: listQuery,
      response: { 200: listOf(pipeline), ...errors },
    }),
    async (request) =>
      listed(await pipelines.pipelines.page(caller(request, READ), page(request)), pipelineOut),
  );

  app.post<{ Body: PipelineInput }>(
    "/api/v1/pipelines",
    route(
      "createPipeline",
      "pipelines",
      "A pipeline from one of the caller's sources into one of its datasets.",
      {
        body: {
          type: "object",
          required: ["sourceId", "datasetId", "name", "steps"],
          properties: { sourceId: { type: "string" }, datasetId: { type: "string" }, ...pipelineSettings },
          additionalProperties: false,
        },
        response: { 201: pipeline, ...errors },
      },
    ),
    async (request, reply) => {
      const input = {
        ...request.body,
        sourceId: decodeGlobalId(request.body.sourceId, ["Source"]).id,
        datasetId: decodeGlobalId(request.body.datasetId, ["Dataset"]).id,
      };
      return reply.status(201).send(pipelineOut(await pipelines.create(caller(request, WRITE), input)));
    },
  );

  app.get<Id>(
    "/api/v1/pipelines/:id",
    route("getPipeline", "pipelines", "One pipeline (as node(id:)).", {
      params: idParam,
      response: { 200: pipeline, ...errors },
    }),
    async (request) => pipelineOut(await ownPipeline(caller(request, READ), request.params.id)),
  );

  app.patch<Id & { Body: PipelineUpdate }>(
    "/api/v1/pipelines/:id",
    route("updatePipeline", "pipelines", "Changes the pipeline's settings; fields left out stay.", {
      params: idParam,
      body: { type: "object", properties: pipelineSettings, additionalProperties: false },
      response: { 200: pipeline, ...errors },
    }),
    async (request) =>
      pipelineOut(
        await pipelines.update(caller(request, WRITE), pipelineId(request.params.id), request.body),
      ),
  );

  app.delete<Id>(
    "/api/v1/pipelines/:id",
    route(
      "deletePipeline",
      "pipelines",
      "Deletes the pipeline, its runs and logs; 409 while a run is going.",
      {
        params: idParam,
        response: { 200: pipeline, ...errors },
      },
    ),
    async (request) =>
      pipelineOut(await pipelines.delete(caller(request, WRITE), pipelineId(request.params.id))),
  );

  for (const [action, summary] of [
    ["start", "Runs the pipeline on its cron schedule from now on."],
    ["stop", "Stops the schedule and cancels a queued or running run (the dataset stays as it was)."],
  ] as const) {
    app.post<Id>(
      `/api/v1/pipelines/:id/${action}`,
      route(`${action}Pipeline`, "pipelines", summary, {
        params: idParam,
        response: { 200: pipeline, ...errors },
      }),
      async (request) =>
        pipelineOut(await pipelines[action](caller(request, WRITE), pipelineId(request.params.id))),
    );
  }

  app.post<Id>(
    "/api/v1/pipelines/:id/runs",
    route(
      "runPipeline",
      "pipelines",
      "Queues a run now; 409 (with runId) while another is queued or running.",
      {
        params: idParam,
        response: { 202: run, ...errors },
      },
    ),
    async (request, reply) =>
      reply
        .status(202)
        .send(runOut(await pipelines.run(caller(request, WRITE), pipelineId(request.params.id)))),
  );

  app.get<Id & List>(
    "/api/v1/pipelines/:id/runs",
    route("listPipelineRuns", "pipelines", "The pipeline's runs, oldest first (as `Pipeline.runs`).", {
      params: idParam,
      querystring: listQuery,
      response: { 200: listOf(run), ...errors },
    }),
    async (request) => {
      const who = caller(request, READ);
      const { id } = await ownPipeline(who, request.params.id);
      return listed(await pipelines.runs.page(who, page(request), { pipelineId: id }), runOut);
    },
  );

  app.get<Id & List>(
    "/api/v1/pipelines/:id/logs",
    route("listPipelineLogs", "pipelines", "Log lines of every run, oldest first (as `Pipeline.logs`).", {
      params: idParam,
      querystring: listQuery,
      response: { 200: listOf(log), ...errors },
    }),
    async (request) => {
      const who = caller(request, READ);
      const { id } = await ownPipeline(who, request.params.id);
      return listed(await pipelines.logs.page(who, page(request), { pipelineId: id }), logOut);
    },
  );

  app.get<Id>(
    "/api/v1/runs/:id",
    route("getPipelineRun", "pipelines", "One run: status, progress and counts (as node(id:)).", {
      params: idParam,
      response: { 200: run, ...errors },
    }),
    async (request) => {
      const id = decodeGlobalId(request.params.id, ["PipelineRun"]).id;
      return runOut(await visible(pipelines.runs.byIds(caller(request, READ), [id]), "PipelineRun"));
    },
  );
}
