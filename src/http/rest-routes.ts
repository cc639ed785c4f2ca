// REST routes that match the GraphQL API, each declared with a JSON schema from which
// @fastify/swagger generates the OpenAPI 3.1 document (/openapi.json, /docs): the catalogue,
// pages of records, a record by key and aggregates. Authentication, rate limits, access rules and
// prices are the GraphQL API's own: `identify` from the server, every rule from CatalogService and
// ReadService. Errors are `{ error: { code, message, … } }` with the status of their code.
import { pageFlag } from "../pagination.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Dataset } from "../catalog/catalog.types.js";
import { badInput, notFound } from "../errors.js";
import type { Caller } from "../identity/caller.js";
import type { RecordFilter } from "../records/filter.js";
import { CostMeter, type Cost } from "../records/read.service.js";
import type { AggregateArgs } from "../records/records.reader.js";
import type { Services } from "../services.js";

export interface RestRouteDeps {
  services: Services;
  identify: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  callerOf: (request: FastifyRequest) => Caller;
}

/** The body of every REST error: `{ error: { code, message, … } }`. */
export const errorBody = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" } },
      additionalProperties: true,
    },
  },
} as const;
const error = errorBody;
const errors = { 400: error, 401: error, 402: error, 403: error, 404: error, 429: error, 503: error };

const cost = {
  type: "object",
  required: ["records", "credits", "balance"],
  properties: {
    records: { type: "integer", description: "Records returned." },
    credits: { type: "integer", description: "Credits charged." },
    balance: { type: "integer", description: "Credits left." },
  },
} as const;
const record = {
  type: "object",
  required: ["key", "values"],
  properties: {
    key: { type: "string" },
    values: { type: "object", additionalProperties: true, description: "Values by column." },
  },
} as const;
const column = {
  type: "object",
  required: ["name", "type", "nullable"],
  properties: { name: { type: "string" }, type: { type: "string" }, nullable: { type: "boolean" } },
} as const;
const dataset = {
  type: "object",
  required: ["id", "slug", "title", "category", "access", "columns", "keyColumns"],
  properties: {
    id: { type: "string", description: "The GraphQL global id." },
    slug: { type: "string" },
    title: { type: "string" },
    description: { type: "string" },
    category: { type: "string" },
    tags: { type: "array", items: { type: "string" } },
    access: { type: "string", enum: ["OPEN", "METERED", "PURCHASED"] },
    status: { type: "string" },
    columns: { type: "array", items: column },
    keyColumns: { type: "array", items: { type: "string" } },
    rowCount: { type: "integer" },
  },
} as const;
const slugParam = {
  type: "object",
  required: ["slug"],
  properties: { slug: { type: "string", description: "The dataset's slug." } },
} as const;
const filterParam = {
  type: "string",
  description: 'A RecordFilter as JSON, e.g. {"column":"country","eq":"NO"}.',
} as const;
const security = [{ apiKey: [] }];

export async function registerRestRoutes(app: FastifyInstance, deps: RestRouteDeps): Promise<void> {
  const { services } = deps;
  const reads = services.reads;
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => deps.identify(request, reply);
  const context = (request: FastifyRequest, meter: CostMeter) => ({
    requestId: request.id,
    meter,
    log: request.log,
  });
  const costOf = (meter: CostMeter, reply: FastifyReply): Cost => {
    const spent = { records: meter.records, credits: meter.credits, balance: meter.balance ?? 0 };
    reply.headers({
      "cache-control": "no-store",
      "x-records": String(spent.records),
      "x-credits-charged": String(spent.credits),
      "x-credits-remaining": String(spent.balance),
    });
    return spent;
  };

  app.get<{ Querystring: { limit: number; cursor?: string; search?: string; category?: string } }>(
    "/api/v1/catalogue",
    {
      preHandler,
      schema: {
        operationId: "listDatasets",
        tags: ["catalogue"],
        summary: "The catalogue: published datasets (and, for publishers, their own). Free.",
        querystring: {
          type: "object",
          properties: {
            limit: { type: "integer", minimum: 1, maximum: 100, default: 20 },
            cursor: { type: "string" },
            search: { type: "string" },
            category: { type: "string" },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: "object",
            required: ["data", "next_cursor"],
            properties: {
              data: { type: "array", items: dataset },
              next_cursor: { type: ["string", "null"] },
            },
          },
          ...errors,
        },
      },
    },
    async (request) => {
      const { limit, cursor, search, category } = request.query;
      const page = await services.catalog.list(
        deps.callerOf(request),
        { first: limit, after: cursor ?? null },
        { search, category },
      );
      return {
        data: page.items.map((row) => Dataset.from(row)),
        next_cursor: (await pageFlag(page.hasNextPage)) ? (page.cursors.at(-1) ?? null) : null,
      };
    },
  );

  app.get<{ Params: { slug: string } }>(
    "/api/v1/catalogue/:slug",
    {
      preHandler,
      schema: {
        operationId: "getDataset",
        tags: ["catalogue"],
        summary: "One dataset's description and columns. Free.",
        params: slugParam,
        response: { 200: dataset, ...errors },
      },
    },
    async (request) => {
      const row = await services.catalog.bySlug(deps.callerOf(request), request.params.slug);
      if (!row) throw notFound("Dataset");
      return Dataset.from(row);
    },
  );

  app.get<{ Params: { slug: string }; Querystring: { limit: number; cursor?: string; filter?: string } }>(
    "/api/v1/datasets/:slug/records",
    {
      preHandler,
      schema: {
        operationId: "listRecords",
        tags: ["records"],
        summary: "A page of records, as Dataset.records. METERED: ceil(records / 100) × the price.",
        security,
        params: slugParam,
        querystring: {
          type: "object",
          required: ["limit"],
          properties: {
            limit: { type: "integer", minimum: 1 },
            cursor: { type: "string" },
            filter: filterParam,
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: "object",
            required: ["data", "next_cursor", "cost"],
            properties: {
              data: { type: "array", items: record },
              next_cursor: { type: ["string", "null"] },
              cost,
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const caller = deps.callerOf(request);
      const dataset = await reads.datasetBySlug(caller, request.params.slug);
      const meter = new CostMeter();
      const { limit, cursor, filter } = request.query;
      const page = await reads.page(
        caller,
        dataset,
        { first: limit, after: cursor ?? null, filter: parseFilter(filter) },
        context(request, meter),
      );
      const next = (await pageFlag(page.hasNextPage)) ? (page.cursors.at(-1) ?? null) : null;
      return { data: page.items, next_cursor: next, cost: costOf(meter, reply) };
    },
  );

  app.get<{ Params: { slug: string; key: string } }>(
    "/api/v1/datasets/:slug/records/:key",
    {
      preHandler,
      schema: {
        operationId: "getRecord",
        tags: ["records"],
        summary: "One record by key, as Dataset.record. METERED: the price of 100 records when found.",
        security,
        params: {
          type: "object",
          required: ["slug", "key"],
          properties: { ...slugParam.properties, key: { type: "string", description: "The record's key." } },
        },
        response: {
          200: { type: "object", required: ["data", "cost"], properties: { data: record, cost } },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const caller = deps.callerOf(request);
      const dataset = await reads.datasetBySlug(caller, request.params.slug);
      const meter = new CostMeter();
      const row = await reads.record(caller, dataset, request.params.key, context(request, meter));
      if (!row) throw notFound("Record");
      return { data: row, cost: costOf(meter, reply) };
    },
  );

  app.post<{ Params: { slug: string }; Body: AggregateArgs & { filter?: RecordFilter | null } }>(
    "/api/v1/datasets/:slug/aggregate",
    {
      preHandler,
      schema: {
        operationId: "aggregateRecords",
        tags: ["records"],
        summary: "Grouped metrics, as Dataset.aggregate. METERED: the price of 100 records.",
        security,
        params: slugParam,
        body: {
          type: "object",
          required: ["metrics", "first"],
          properties: {
            groupBy: {
              type: "array",
              items: {
                type: "object",
                required: ["column"],
                properties: {
                  column: { type: "string" },
                  bucket: { type: "string", enum: ["MINUTE", "HOUR", "DAY", "WEEK", "MONTH"] },
                },
              },
            },
            metrics: {
              type: "array",
              minItems: 1,
              items: {
                type: "object",
                required: ["fn"],
                properties: {
                  fn: { type: "string", enum: ["COUNT", "SUM", "AVG", "MIN", "MAX", "UNIQ", "QUANTILE"] },
                  column: { type: "string" },
                  q: { type: "number" },
                  alias: { type: "string" },
                },
              },
            },
            filter: { type: "object", additionalProperties: true, description: "A RecordFilter." },
            window: {
              type: "object",
              required: ["column", "last"],
              properties: {
                column: { type: "string", description: "A DATETIME column." },
                last: { type: "string", description: 'A span ending now: "5m", "1h", "24h" (s, m, h, d).' },
              },
              additionalProperties: false,
            },
            first: { type: "integer", minimum: 1 },
            after: { type: "string" },
          },
          additionalProperties: false,
        },
        response: {
          200: {
            type: "object",
            required: ["data", "next_cursor", "cost"],
            properties: {
              data: {
                type: "array",
                items: {
                  type: "object",
                  required: ["group", "metrics"],
                  properties: {
                    group: { type: "object", additionalProperties: true },
                    metrics: { type: "object", additionalProperties: true },
                  },
                },
              },
              next_cursor: { type: ["string", "null"] },
              cost,
            },
          },
          ...errors,
        },
      },
    },
    async (request, reply) => {
      const caller = deps.callerOf(request);
      const dataset = await reads.datasetBySlug(caller, request.params.slug);
      const meter = new CostMeter();
      const page = await reads.aggregate(caller, dataset, request.body, context(request, meter));
      const next = (await pageFlag(page.hasNextPage)) ? (page.cursors.at(-1) ?? null) : null;
      return { data: page.items, next_cursor: next, cost: costOf(meter, reply) };
    },
  );
}

function parseFilter(value: string | undefined): RecordFilter | null {
  if (value === undefined || value === "") return null;
  try {
    // Structure and values are checked against the dataset's columns by compileFilter.
    return JSON.parse(value) as RecordFilter;
  } catch {
    throw badInput('"filter" must be a RecordFilter as JSON, such as {"column":"country","eq":"NO"}', {
      argument: "filter",
    });
  }
}
