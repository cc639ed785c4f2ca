// The HTTP API source's settings. Credentials live apart, in HttpSecrets (encrypted at rest), so
// the config can be shown, logged and compared freely.
import { z } from "zod";
import { badInput } from "../../errors.js";

const name = z.string().min(1).max(200);
const headerName = z.string().regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, "must be a valid HTTP header name");
const dotPath = z.string().regex(/^[^.]+(\.[^.]+)*$/, "must be a dot path such as data.items");
const count = (min: number, max: number) => z.int().min(min).max(max);

// Strict, so a credential pasted into the config is refused instead of stored in plain text.
const auth = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("none") }),
  z.strictObject({ type: z.literal("header"), name: headerName }),
  z.strictObject({ type: z.literal("bearer") }),
  z.strictObject({ type: z.literal("basic") }),
]);

const pagination = z.discriminatedUnion("type", [
  z.object({ type: z.literal("none") }),
  /** The response carries the next cursor at `responsePath`; it is sent back as `param`. */
  z.object({ type: z.literal("cursor"), param: name, responsePath: dotPath }),
  /** The next page's URL, from the body at `responsePath` or else from `Link: <…>; rel="next"`. */
  z.object({ type: z.literal("nextLink"), responsePath: dotPath.optional() }),
  z.object({
    type: z.literal("page"),
    param: name,
    start: count(0, 1_000_000).default(1),
    /** When set, a page shorter than this is the last one. */
    size: count(1, 100_000).optional(),
    sizeParam: name.optional(),
  }),
  z.object({ type: z.literal("offset"), param: name, limitParam: name, limit: count(1, 100_000) }),
]);

export const httpSourceConfigSchema = z
  .object({
    url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }),
    method: z.enum(["GET", "POST"]).default("GET"),
    /** Non-secret headers. Credentials go in `auth`. */
    headers: z.record(headerName, z.string().max(8_000)).default({}),
    /** JSON body for POST; pagination and incremental parameters are merged into it. */
    body: z.record(z.string(), z.unknown()).optional(),
    auth: auth.default({ type: "none" }),
    /** Dot path to the records array; empty when the body itself is the array. */
    recordsPath: z.union([z.literal(""), dotPath]).default(""),
    pagination: pagination.default({ type: "none" }),
    /** Safety bound: a sync stops (and says so) after this many pages. @default 1000 */
    maxPages: count(1, 1_000_000).default(1000),
    /** Per request, body included. @default 30000 */
    timeoutMs: count(100, 600_000).default(30_000),
    /** A record field whose largest value is the checkpoint; sent back as `param` on the next sync. */
    incremental: z.object({ field: dotPath, param: name.optional() }).optional(),
    retry: z
      .object({
        /** Requests per page, the first included. @default 4 */
        attempts: count(1, 10).default(4),
        baseDelayMs: count(0, 60_000).default(500),
        maxDelayMs: count(0, 600_000).default(30_000),
        /** A longer Retry-After fails the sync (to be retried later) rather than hold a worker. */
        maxRetryAfterMs: count(0, 3_600_000).default(120_000),
      })
      .prefault({}),
    breaker: z
      .object({ failureThreshold: count(1, 100).default(5), coolDownMs: count(0, 3_600_000).default(60_000) })
      .prefault({}),
  })
  .superRefine((config, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: path.split("."), message });
    const url = URL.canParse(config.url) ? new URL(config.url) : undefined;
    if (url && (url.username || url.password)) problem("url", "must not carry credentials; use auth");
    if (config.method === "GET" && config.body) problem("body", "is only sent with POST");
    if (Object.keys(config.headers).some((h) => h.toLowerCase() === "authorization")) {
      problem("headers", "must not set Authorization; use auth");
    }
    const p = config.pagination;
    if (p.type === "page" && p.sizeParam && p.size === undefined)
      problem("pagination.size", "is required with sizeParam");
  });

export type HttpSourceConfig = z.output<typeof httpSourceConfigSchema>;
export type HttpSourceConfigInput = z.input<typeof httpSourceConfigSchema>;
export type HttpAuth = HttpSourceConfig["auth"];
export type HttpPagination = HttpSourceConfig["pagination"];

/** Validates a source's settings, listing every problem at once (BAD_USER_INPUT, `problems`). */
export function parseHttpSourceConfig(input: unknown): HttpSourceConfig {
  const result = httpSourceConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw badInput(`Invalid HTTP source: ${problems.join("; ")}`, { problems });
}

/** Credential values for `auth`; decrypted just before a sync and never logged. */
export interface HttpSecrets {
  headerValue?: string;
  token?: string;
  username?: string;
  password?: string;
}

const required: Record<HttpAuth["type"], (keyof HttpSecrets)[]> = {
  none: [],
  header: ["headerValue"],
  bearer: ["token"],
  basic: ["username", "password"],
};

/**
 * Checks the secrets `auth` needs. Messages name the missing fields, never a value; a control
 * character is refused here because fetch would echo the whole header value in its error.
 */
export function checkHttpSecrets(auth: HttpAuth, secrets: HttpSecrets): void {
  const problems: string[] = [];
  for (const key of required[auth.type]) {
    const value = secrets[key];
    if (!value) problems.push(`${key}: is required for ${auth.type} auth`);
    // eslint-disable-next-line no-control-regex
    else if (/[\u0000-\u001f\u007f]/.test(value))
      problems.push(`${key}: must not contain control characters`);
  }
  if (auth.type === "basic" && secrets.username?.includes(":"))
    problems.push("username: must not contain ':'");
  if (problems.length) throw badInput(`Invalid HTTP source secrets: ${problems.join("; ")}`, { problems });
}

/** The request headers that carry the credentials. */
export function authHeaders(auth: HttpAuth, secrets: HttpSecrets): Record<string, string> {
  switch (auth.type) {
    case "none":
      return {};
    case "header":
      return { [auth.name]: secrets.headerValue ?? "" };
    case "bearer":
      return { authorization: `Bearer ${secrets.token ?? ""}` };
    case "basic": {
      const pair = `${secrets.username ?? ""}:${secrets.password ?? ""}`;
      return { authorization: `Basic ${Buffer.from(pair, "utf8").toString("base64")}` };
    }
  }
}
