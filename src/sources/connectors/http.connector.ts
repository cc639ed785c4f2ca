// The HTTP API source: pages through a publisher's JSON API and yields its records, with the
// largest incremental cursor value as the checkpoint for the next sync.
import { setTimeout as delay } from "node:timers/promises";
import { AppError, badInput } from "../../errors.js";
import type { OutboundPolicy } from "../../net/outbound.js";
import { defaultBreakers, type CircuitBreakerRegistry } from "./http.breaker.js";
import { requestJson, safeUrl, type HttpCallContext, type HttpResponse } from "./http.client.js";
import {
  authHeaders,
  checkHttpSecrets,
  parseHttpSourceConfig,
  type HttpSecrets,
  type HttpSourceConfig,
} from "./http.config.js";
import { firstPage, nextPage, pageParams, valueAt, type PageState } from "./http.pagination.js";
import { allowedUrl } from "./targets.js";
import type { Checkpoint, Connector, ConnectorContext, ConnectorLog, SourceReader } from "./types.js";

export interface HttpFetchOptions {
  log: ConnectorLog;
  signal?: AbortSignal;
  /** The previous sync's checkpoint, sent as `incremental.param`. */
  checkpoint?: Checkpoint;
  /** Keys the circuit breaker; defaults to the URL without its query. */
  sourceId?: string;
  breakers?: CircuitBreakerRegistry;
  now?: () => number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  /** Set: requests go only to addresses this policy allows. */
  outbound?: OutboundPolicy | undefined;
}

export interface HttpRecord {
  record: Record<string, unknown>;
  page: number;
}

export interface HttpFetchResult {
  pages: number;
  records: number;
  /** The largest `incremental.field` value seen, else the checkpoint passed in. */
  checkpoint: Checkpoint | undefined;
  /** True when `maxPages` stopped the sync while the API still had pages. */
  truncated: boolean;
}

export interface HttpRecordStream extends AsyncIterable<HttpRecord> {
  /** Settles when iteration ends; rejects if it failed or the consumer stopped early. */
  readonly result: Promise<HttpFetchResult>;
}

export function fetchRecords(
  config: HttpSourceConfig,
  secrets: HttpSecrets,
  options: HttpFetchOptions,
): HttpRecordStream {
  checkHttpSecrets(config.auth, secrets);
  let settle!: { resolve: (r: HttpFetchResult) => void; reject: (e: unknown) => void };
  const result = new Promise<HttpFetchResult>((resolve, reject) => (settle = { resolve, reject }));
  // Callers that only iterate must not get an unhandled rejection; `await result` still throws.
  result.catch(() => undefined);
  let started = false;

  async function* run(): AsyncGenerator<HttpRecord, void, undefined> {
    let done = false;
    try {
      settle.resolve(yield* pages(config, secrets, options));
      done = true;
    } catch (error) {
      done = true;
      settle.reject(error);
      throw error;
    } finally {
      if (!done) settle.reject(new Error("HTTP source iteration stopped before the end"));
    }
  }

  return {
    result,
    [Symbol.asyncIterator]() {
      if (started) throw new Error("fetchRecords streams can be iterated once");
      started = true;
      return run();
    },
  };
}

async function* pages(
  config: HttpSourceConfig,
  secrets: HttpSecrets,
  options: HttpFetchOptions,
): AsyncGenerator<HttpRecord, HttpFetchResult, undefined> {
  const base = new URL(config.url);
  const breakerKey = options.sourceId ?? safeUrl(base);
  const ctx: HttpCallContext = {
    retry: config.retry,
    timeoutMs: config.timeoutMs,
    breaker: (options.breakers ?? defaultBreakers).get(breakerKey, config.breaker),
    log: options.log,
    signal: options.signal,
    now: options.now ?? Date.now,
    sleep: options.sleep ?? ((ms, signal) => delay(ms, undefined, { signal })),
    random: options.random ?? Math.random,
    outbound: options.outbound,
  };
  const headers = { ...config.headers, ...authHeaders(config.auth, secrets) };
  const incrementalParam =
    config.incremental?.param !== undefined && options.checkpoint !== undefined
      ? { [config.incremental.param]: String(options.checkpoint) }
      : {};

  let checkpoint = options.checkpoint;
  let records = 0;
  let state: PageState = firstPage(config.pagination, base);
  for (let page = 1; ; page++) {
    const params = { ...incrementalParam, ...pageParams(config.pagination, state) };
    const response = await requestJson(buildRequest(config, state.url, params, headers), ctx);
    const items = recordsOf(response, config.recordsPath, page);
    options.log.debug({ url: safeUrl(state.url), page, records: items.length }, "HTTP source page");
    for (const record of items) {
      if (config.incremental)
        checkpoint = maxCheckpoint(checkpoint, valueAt(record, config.incremental.field));
      records++;
      yield { record, page };
    }
    const next = nextPage(config.pagination, state, response, items.length);
    if (!next) return { pages: page, records, checkpoint, truncated: false };
    if (page >= config.maxPages) {
      options.log.warn({ url: safeUrl(base), maxPages: config.maxPages }, "HTTP source stopped at maxPages");
      return { pages: page, records, checkpoint, truncated: true };
    }
    state = next;
  }
}

function buildRequest(
  config: HttpSourceConfig,
  url: URL,
  params: Record<string, string | number>,
  headers: Record<string, string>,
) {
  if (config.method === "POST") {
    return {
      url,
      method: config.method,
      headers: { ...headers, "content-type": "application/json" },
      body: JSON.stringify({ ...config.body, ...params }),
    };
  }
  const withParams = new URL(url);
  for (const [key, value] of Object.entries(params)) withParams.searchParams.set(key, String(value));
  return { url: withParams, method: config.method, headers };
}

function recordsOf(response: HttpResponse, path: string, page: number): Record<string, unknown>[] {
  const found = path ? valueAt(response.body, path) : response.body;
  if (!Array.isArray(found)) {
    const what = found === null ? "null" : Array.isArray(found) ? "array" : typeof found;
    throw badInput(
      `${safeUrl(response.url)}: ${path ? `recordsPath "${path}"` : "the response body"} is ${what}, not an array`,
      { page, recordsPath: path },
    );
  }
  found.forEach((item: unknown, index) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      throw badInput(`${safeUrl(response.url)}: record ${index} on page ${page} is not a JSON object`, {
        page,
      });
    }
  });
  return found as Record<string, unknown>[];
}

/** Numbers compare as numbers, strings (ISO timestamps, padded ids) as strings; other values are skipped. */
function maxCheckpoint(current: Checkpoint | undefined, value: unknown): Checkpoint | undefined {
  if (typeof value !== "string" && typeof value !== "number") return current;
  if (current === undefined || typeof current !== typeof value) return current ?? value;
  return value > current ? value : current;
}

/** The problems an AppError carrying `problems` lists; anything else is rethrown. */
function problemsOf(check: () => void): string[] {
  try {
    check();
    return [];
  } catch (error) {
    const listed = error instanceof AppError ? error.fields.problems : undefined;
    if (!Array.isArray(listed)) throw error;
    return listed as string[];
  }
}

const asCheckpoint = (value: unknown): Checkpoint | undefined =>
  typeof value === "string" || typeof value === "number" ? value : undefined;

/**
 * HTTP API sources as the pipeline runner and connection tests use them; with a policy, only
 * addresses it allows are contacted.
 */
export const httpConnectorWith = (outbound?: OutboundPolicy): Connector => ({
  async checkTargets(config) {
    if (outbound) await allowedUrl("url", parseHttpSourceConfig(config).url, outbound);
  },

  validate(config, secrets) {
    let parsed: HttpSourceConfig | undefined;
    const problems = problemsOf(() => (parsed = parseHttpSourceConfig(config)));
    if (parsed) problems.push(...problemsOf(() => checkHttpSecrets(parsed!.auth, secrets)));
    return problems;
  },

  read(context: ConnectorContext): SourceReader {
    const config = parseHttpSourceConfig(context.config);
    const previous = asCheckpoint(context.checkpoint);
    let checkpoint: Checkpoint | null = previous ?? null;
    return {
      async *[Symbol.asyncIterator]() {
        const stream = fetchRecords(config, context.secrets, {
          log: context.log,
          signal: context.signal,
          sourceId: context.sourceId,
          outbound,
          // A full refresh reads everything, and still leaves the largest cursor for a later increment.
          checkpoint: context.mode === "INCREMENTAL" ? previous : undefined,
        });
        let rowNumber = 0;
        for await (const { record, page } of stream) {
          rowNumber++;
          const bytes = Buffer.byteLength(JSON.stringify(record));
          yield { ok: true, rowNumber, record, bytes, origin: `page ${page}` };
        }
        checkpoint = (await stream.result).checkpoint ?? checkpoint;
      },
      checkpoint: () => checkpoint,
    };
  },

  async sample(context, max) {
    const config = parseHttpSourceConfig({ ...context.config, maxPages: 1 });
    const records: Record<string, unknown>[] = [];
    const stream = fetchRecords(config, context.secrets, {
      log: context.log,
      signal: context.signal,
      sourceId: context.sourceId,
      outbound,
    });
    for await (const { record } of stream) {
      records.push(record);
      if (records.length >= max) break;
    }
    return { message: `Read ${records.length} record(s) from the first page`, records };
  },
});

/** Unguarded: for callers that chose the URL themselves (tests, tools). */
export const httpConnector: Connector = httpConnectorWith();
