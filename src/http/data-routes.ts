// The REST data API for client programs: pages of records (`/api/v1/data/query`) and whole or
// filtered datasets streamed (`/api/v1/data/export`). Same credentials, rate limits, access rules
// and prices as `Dataset.records`: authentication and limits come from the server's `identify`,
// every rule about reading and paying from ReadService. Errors are `{ error: { code, message } }`.
import { pageFlag } from "../pagination.js";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, badInput } from "../errors.js";
import type { Caller } from "../identity/caller.js";
import { CONTENT_TYPES, formatRows, TEXT_FORMATS, type TextFormat } from "../records/export.js";
import { EXPORT_CONTENT_TYPES, EXPORT_FORMATS } from "../records/export.engine.js";
import type { RecordFilter } from "../records/filter.js";
import { CostMeter, ref, type Cost } from "../records/read.service.js";
import type { Services } from "../services.js";
import { exportStream } from "./export-stream.js";

export interface DataRouteDeps {
  services: Services;
  identify: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  callerOf: (request: FastifyRequest) => Caller;
}

const QUERY_FORMATS = ["json", ...TEXT_FORMATS] as const;

const QUERY_PARAMS = ["dataset", "format", "limit", "cursor", "filter"] as const;
const EXPORT_PARAMS = ["dataset", "format", "filter", "after"] as const;

// Read by programs (and by browsers, when CORS lets the origin in).
const COST_HEADERS = ["x-next-cursor", "x-records", "x-credits-charged", "x-credits-remaining"];

export async function registerDataRoutes(app: FastifyInstance, deps: DataRouteDeps): Promise<void> {
  const { services } = deps;
  const reads = services.reads;
  // No automatic HEAD routes: a HEAD of an export would run (and charge) the whole export.
  const options = {
    exposeHeadRoute: false,
    preHandler: async (request: FastifyRequest, reply: FastifyReply) => deps.identify(request, reply),
  };

  app.get("/api/v1/data/query", options, async (request, reply) => {
    const params = readParams(request.query, QUERY_PARAMS);
    const format = oneOf("format", params.format ?? "json", QUERY_FORMATS);
    const limit = pageSize(params.limit, reads.maxPageSize);
    const filter = parseFilter(params.filter);
    const caller = deps.callerOf(request);
    const dataset = await reads.datasetBySlug(caller, required("dataset", params.dataset));
    const meter = new CostMeter();
    const page = await reads
      .page(
        caller,
        dataset,
        { first: limit, after: params.cursor ?? null, filter },
        { requestId: request.id, meter, log: request.log },
      )
      .catch(inRestTerms);
    const next = (await pageFlag(page.hasNextPage)) ? (page.cursors.at(-1) ?? null) : null;
    const cost: Cost = { records: meter.records, credits: meter.credits, balance: meter.balance ?? 0 };
    costHeaders(reply, cost, next);
    reply.type(CONTENT_TYPES[format]);
    if (format === "json") return { data: page.items, next_cursor: next, cost };
    return formatRows(format, ref(dataset).columns, page.items);
  });

  app.get("/api/v1/data/export", options, async (request, reply) => {
    const params = readParams(request.query, EXPORT_PARAMS);
    const format = oneOf("format", params.format ?? "ndjson", EXPORT_FORMATS);
    const filter = parseFilter(params.filter);
    const caller = deps.callerOf(request);
    const dataset = await reads.datasetBySlug(caller, required("dataset", params.dataset));
    // The client going away stops the ClickHouse query, even one waiting for its first rows.
    const gone = new AbortController();
    reply.raw.once("close", () => gone.abort());
    const run = await reads.exportRows(
      caller,
      dataset,
      filter,
      { requestId: request.id, meter: new CostMeter(), log: request.log, signal: gone.signal },
      { after: params.after ?? null, format },
    );
    if (!run.bytes && !isTextFormat(format)) {
      await run.finish(0);
      throw badInput(`This server cannot write "${format}" for this dataset; ask for ndjson or csv`, {
        argument: "format",
      });
    }
    // Sent before the first row: what the whole export costs (the hold) and the balance after it.
    // When the stream stops early the buyer pays for the rows sent only (ReadService.exportRows).
    costHeaders(reply, run.reserved, null);
    reply.header("content-disposition", `attachment; filename="${run.dataset.slug}.${format}"`);
    reply.type(EXPORT_CONTENT_TYPES[format]);

    return reply.send(exportStream(run, format, request.log));
  });
}

const isTextFormat = (format: string): format is TextFormat =>
  (TEXT_FORMATS as readonly string[]).includes(format);

function costHeaders(reply: FastifyReply, cost: Cost, next: string | null): void {
  reply.headers({
    "cache-control": "no-store",
    "x-records": String(cost.records),
    "x-credits-charged": String(cost.credits),
    "x-credits-remaining": String(cost.balance),
  });
  if (next !== null) reply.header("x-next-cursor", next);
  const exposed = reply.getHeader("access-control-expose-headers");
  if (typeof exposed === "string") {
    reply.header("access-control-expose-headers", [exposed, ...COST_HEADERS].join(","));
  }
}

/**
 * The query string as single values, refusing unknown and repeated parameters: a misspelt
 * `filtr=` must not quietly return (and charge for) unfiltered rows. Empty values count as absent.
 */
function readParams<K extends string>(query: unknown, allowed: readonly K[]): Partial<Record<K, string>> {
  const params: Partial<Record<K, string>> = {};
  for (const [name, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    if (!(allowed as readonly string[]).includes(name)) {
      throw badInput(`Unknown parameter "${name}"; this endpoint takes ${allowed.join(", ")}`, {
        argument: name,
      });
    }
    if (typeof value !== "string") throw badInput(`Pass "${name}" once`, { argument: name });
    if (value !== "") params[name as K] = value;
  }
  return params;
}

function required(name: string, value: string | undefined): string {
  if (value === undefined) throw badInput(`The "${name}" parameter is required`, { argument: name });
  return value;
}

function oneOf<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw badInput(`"${name}" must be one of ${allowed.join(", ")}`, { argument: name });
  }
  return value as T;
}

// Required, as `first` is in GraphQL: the size of a read is what it costs.
function pageSize(value: string | undefined, max: number): number {
  const invalid = () =>
    badInput(`"limit" must be a whole number from 1 to ${max}`, { argument: "limit", max });
  if (value === undefined || !/^\d{1,9}$/.test(value)) throw invalid();
  const limit = Number(value);
  if (limit < 1 || limit > max) throw invalid();
  return limit;
}

function parseFilter(value: string | undefined): RecordFilter | null {
  if (value === undefined) return null;
  let filter: unknown;
  try {
    filter = JSON.parse(value);
  } catch {
    throw badInput('"filter" must be a RecordFilter as JSON, such as {"column":"country","eq":"NO"}', {
      argument: "filter",
    });
  }
  // The structure and every value are checked against the dataset's columns by compileFilter.
  return filter as RecordFilter;
}

// The service names the GraphQL arguments; this endpoint calls them limit and cursor.
function inRestTerms(error: unknown): never {
  if (error instanceof AppError && error.code === "BAD_USER_INPUT") {
    if (error.fields.argument === "after") {
      throw new AppError("BAD_USER_INPUT", "Invalid cursor", { argument: "cursor" }, { cause: error });
    }
  }
  throw error;
}
