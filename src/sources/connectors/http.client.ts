// One JSON request to a publisher's API: timeout, retries with backoff honouring Retry-After,
// and the circuit breaker. Errors name the status and the URL without its query string, never a
// header, so no credential reaches a message or a log line.
import { AppError, ErrorCode, badInput } from "../../errors.js";
import { OutboundRefused, guardedFetch, type OutboundPolicy } from "../../net/outbound.js";
import type { CircuitBreaker } from "./http.breaker.js";
import type { HttpSourceConfig } from "./http.config.js";
import { backoffDelay, honoursRetryAfter, isRetryableStatus, parseRetryAfter } from "./http.retry.js";
import { refusedTarget } from "./targets.js";
import type { ConnectorLog } from "./types.js";

export interface HttpRequest {
  url: URL;
  method: "GET" | "POST";
  headers: Record<string, string>;
  body?: string;
}

export interface HttpResponse {
  url: URL;
  headers: Headers;
  body: unknown;
}

export interface HttpCallContext {
  retry: HttpSourceConfig["retry"];
  timeoutMs: number;
  breaker: CircuitBreaker;
  log: ConnectorLog;
  signal?: AbortSignal;
  now: () => number;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  random: () => number;
  /** Set: every request (next links included) is checked and pinned under it. */
  outbound?: OutboundPolicy | undefined;
}

/** The URL as it may appear in messages and logs: query strings sometimes carry API keys. */
export const safeUrl = (url: URL): string => `${url.origin}${url.pathname}`;

type Outcome = { response: Response; text: string } | { error: unknown };

export async function requestJson(request: HttpRequest, ctx: HttpCallContext): Promise<HttpResponse> {
  const where = safeUrl(request.url);
  for (let attempt = 1; ; attempt++) {
    ctx.breaker.acquire(ctx.now());
    const outcome = await send(request, ctx);
    if ("error" in outcome) {
      if (outcome.error instanceof OutboundRefused) {
        ctx.breaker.abandon();
        throw refusedTarget("url", outcome.error);
      }
      if (ctx.signal?.aborted) {
        ctx.breaker.abandon();
        throw ctx.signal.reason;
      }
      ctx.breaker.recordFailure(ctx.now());
      const reason = describe(outcome.error);
      if (attempt >= ctx.retry.attempts) {
        throw new AppError(ErrorCode.SERVICE_UNAVAILABLE, `Could not reach ${where} (${reason})`, {
          attempts: attempt,
          reason,
        });
      }
      await pause(backoffDelay(attempt, ctx.retry.baseDelayMs, ctx.retry.maxDelayMs, ctx.random), ctx, {
        url: where,
        attempt,
        reason,
      });
      continue;
    }

    const { response, text } = outcome;
    const status = response.status;
    if (response.ok) {
      ctx.breaker.recordSuccess();
      return { url: request.url, headers: response.headers, body: parseJson(text, where, response) };
    }
    if (!isRetryableStatus(status)) {
      // The API answered, so it is up: a wrong URL or credential is not a reason to open the circuit.
      ctx.breaker.recordSuccess();
      if (status >= 300 && status < 400) {
        // Not followed: fetch would forward a custom auth header to wherever the redirect points.
        throw badInput(`${where} redirected (${status}); set the source URL to the final address`, {
          status,
        });
      }
      throw badInput(`${where} answered ${status} ${response.statusText}`.trim(), { status });
    }

    ctx.breaker.recordFailure(ctx.now());
    const retryAfterMs = honoursRetryAfter(status)
      ? parseRetryAfter(response.headers.get("retry-after"), ctx.now())
      : undefined;
    const retryAfterSeconds = retryAfterMs === undefined ? undefined : Math.ceil(retryAfterMs / 1000);
    if (attempt >= ctx.retry.attempts || (retryAfterMs ?? 0) > ctx.retry.maxRetryAfterMs) {
      throw new AppError(
        ErrorCode.SERVICE_UNAVAILABLE,
        `${where} answered ${status} after ${attempt} attempts`,
        {
          status,
          attempts: attempt,
          ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
        },
      );
    }
    const delay =
      retryAfterMs ?? backoffDelay(attempt, ctx.retry.baseDelayMs, ctx.retry.maxDelayMs, ctx.random);
    await pause(delay, ctx, { url: where, attempt, status });
  }
}

async function send(request: HttpRequest, ctx: HttpCallContext): Promise<Outcome> {
  const timeout = AbortSignal.timeout(ctx.timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
  try {
    const init = {
      method: request.method,
      headers: { accept: "application/json", ...request.headers },
      body: request.body,
      signal,
    };
    const response = ctx.outbound
      ? ((await guardedFetch(request.url, init, ctx.outbound, {
          timeoutMs: ctx.timeoutMs,
        })) as unknown as Response)
      : await fetch(request.url, { ...init, redirect: "manual" });
    return { response, text: await response.text() };
  } catch (error) {
    return { error };
  }
}

async function pause(ms: number, ctx: HttpCallContext, fields: Record<string, unknown>): Promise<void> {
  ctx.log.warn({ ...fields, delayMs: ms }, "HTTP source request failed; retrying");
  await ctx.sleep(ms, ctx.signal);
}

/** A short, credential-free reason: error names and codes, never messages that may quote headers. */
function describe(error: unknown): string {
  if (error instanceof Error && error.name === "TimeoutError") return "timed out";
  const cause = error instanceof Error ? error.cause : undefined;
  const code = cause && typeof cause === "object" && "code" in cause ? cause.code : undefined;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "network error";
}

function parseJson(text: string, where: string, response: Response): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw badInput(`${where} did not answer JSON`, {
      status: response.status,
      contentType: response.headers.get("content-type"),
    });
  }
}
