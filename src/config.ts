// The only module that reads process.env. Everything else receives a typed Config.
import { z } from "zod";

const DEV_JWT_SECRET = "dev-only-jwt-secret-change-me-0123456789abcdef";
// 32 bytes, base64. Used only outside production; production must set its own key.
const DEV_ENCRYPTION_KEY = "ZGF0YWh1cy1kZXYtb25seS1rZXktMzItYnl0ZXMhISE=";

const bool = z
  .enum(["true", "false", "1", "0", "yes", "no"])
  .transform((v) => v === "true" || v === "1" || v === "yes");

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const list = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

const DURATION = /^(\d+)(ms|s|m|h|d)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** A comma-separated list of durations such as `10s,1m,2h`, as milliseconds. */
const durations = (fallback: string) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const entries = value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      const bad = entries.filter((entry) => !DURATION.test(entry));
      if (entries.length === 0 || entries.length > 50 || bad.length) {
        ctx.addIssue({
          code: "custom",
          message: "must be 1-50 durations such as 30s,5m,2h (units ms, s, m, h, d)",
        });
        return z.NEVER;
      }
      return entries.map((entry) => {
        const [, amount, unit] = DURATION.exec(entry)!;
        return Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
      });
    });

/**
 * Every setting, with a default that works on a development machine.
 * `.env.example` documents each key; a test keeps the two in sync.
 */
export const configSchema = z.object({
  NODE_ENV: z.enum(["development", "test", "production"]).default("development"),
  HOST: z.string().min(1).default("127.0.0.1"),
  PORT: int(0, 65535).default(4000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  DATABASE_URL: z.url().default("postgresql://postgres@127.0.0.1:5432/datahus"),
  DATABASE_POOL_SIZE: int(1, 200).default(10),
  DATABASE_PREPARED_STATEMENTS: bool.default(true),
  PGBOSS_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]*$/)
    .default("pgboss"),

  // A server (`http(s)://host:8123`) or the embedded engine and its data directory
  // (`embedded:.data/chdb`; `embedded:` alone keeps the data in a temporary directory).
  CLICKHOUSE_URL: z
    .string()
    .default("embedded:.data/chdb")
    .refine(
      (v) => v.startsWith("embedded:") || /^https?:\/\/[^\s]+$/.test(v),
      "must be an http(s):// URL of a ClickHouse server or embedded:<data directory>",
    ),
  CLICKHOUSE_DATABASE: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .default("datahus"),
  CLICKHOUSE_USER: z.string().default("default"),
  CLICKHOUSE_PASSWORD: z.string().default(""),
  CLICKHOUSE_REQUEST_TIMEOUT_MS: int(100, 600_000).default(30_000),
  // A cluster of the server's <remote_servers>: tables are created ON CLUSTER, sharded (README,
  // "Running on a cluster"). Unset: one server.
  CLICKHOUSE_CLUSTER: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
    .optional(),

  // Unset: rate limits, live events and revocations stay inside this one process (fine for
  // `datahus all`; separate API and worker processes need Redis to hear each other).
  REDIS_URL: z.url().optional(),
  REDIS_KEY_PREFIX: z.string().default("datahus:"),

  JWT_SECRET: z.string().min(32).default(DEV_JWT_SECRET),
  JWT_TTL_SECONDS: int(60, 86_400).default(900),
  API_KEY_ROTATION_GRACE_SECONDS: int(0, 30 * 86_400).default(86_400),
  /** How long an API process remembers an authenticated caller (0: not at all); see identity-cache.ts. */
  IDENTITY_CACHE_SECONDS: int(0, 3600).default(30),
  SIGNATURE_TOLERANCE_SECONDS: int(1, 3600).default(300),
  ENCRYPTION_KEY: z
    .string()
    .refine((v) => Buffer.from(v, "base64").length === 32, "must be 32 bytes, base64-encoded")
    .default(DEV_ENCRYPTION_KEY),

  CORS_ORIGINS: list.default([]),
  HTTP_CACHE_MAX_AGE_SECONDS: int(0, 86_400).default(60),
  TRUST_PROXY: bool.default(false),
  TLS_CERT_FILE: z.string().optional(),
  TLS_KEY_FILE: z.string().optional(),
  ANONYMOUS_RATE_LIMIT_PER_MINUTE: int(1, 1_000_000).default(60),
  RATE_LIMIT_FAILURE_MODE: z.enum(["open", "closed"]).default("open"),
  BODY_LIMIT_BYTES: int(1024, 512 * 1024 * 1024).default(1024 * 1024),
  INGEST_MAX_BYTES: int(1024, 512 * 1024 * 1024).default(10 * 1024 * 1024),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(10_000),

  GRAPHQL_INTROSPECTION: bool.optional(),
  /** GraphiQL at GET /graphql for browsers; default: on outside production. */
  GRAPHQL_IDE: bool.optional(),
  GRAPHQL_MAX_DEPTH: int(1, 100).default(12),
  GRAPHQL_MAX_ALIASES: int(0, 1000).default(30),
  GRAPHQL_MAX_DIRECTIVES: int(0, 1000).default(50),
  GRAPHQL_MAX_TOKENS: int(100, 1_000_000).default(5000),
  GRAPHQL_MAX_COST: int(1, 10_000_000).default(50_000),
  MAX_LIMIT: int(1, 1000).default(100),
  EXPORT_RANGES: int(1, 64).default(8),

  SUBSCRIPTION_RECHECK_SECONDS: int(1, 3600).default(15),
  SUBSCRIPTION_KEEPALIVE_SECONDS: int(0, 3600).default(12),
  OUTBOUND_ALLOW_PRIVATE: bool.default(false),
  OUTBOUND_ALLOW_CIDRS: list.default([]),
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  WEBHOOK_RETRY_SCHEDULE: durations("10s,1m,5m,30m,2h,5h,8h,8h"),
  WEBHOOK_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.2),
  WEBHOOK_DISABLE_AFTER_FAILURES: int(1, 100_000).default(100),
  WEBHOOK_CONCURRENCY: int(1, 1000).default(16),
  FILE_SOURCE_ROOT: z.string().optional(),
  PIPELINE_BATCH_ROWS: int(100, 1_000_000).default(200_000),
  // Local CSV files parsed and checked by ClickHouse (src/pipelines/engine); false: always Node.
  PIPELINE_ENGINE_LOAD: bool.default(true),
  // From this size a ClickHouse server parses such a file as two parts at once (two cores busy).
  PIPELINE_ENGINE_PARTS_FROM_BYTES: int(1, Number.MAX_SAFE_INTEGER).default(8 * 2 ** 20),
  PIPELINE_RUN_RETRY_LIMIT: int(0, 100).default(3),
  PIPELINE_RUN_HEARTBEAT_SECONDS: int(10, 3600).default(30),
  JOBS_MONITOR_INTERVAL_SECONDS: int(1, 3600).default(60),
  // The worker's own /metrics (runs, rows, delivery tries, queue depths). Unset: not served;
  // 0: any free port (logged). `datahus all` serves it too.
  WORKER_METRICS_PORT: int(0, 65535).optional(),
  WORKER_METRICS_HOST: z.string().min(1).default("127.0.0.1"),

  // Hostile input and load (README "Under faults, load and hostile input").
  INPUT_MAX_DEPTH: int(4, 1000).default(64),
  LOAD_MAX_IN_FLIGHT: int(0, 100_000).default(256),
  LOAD_MAX_EVENT_LOOP_DELAY_MS: int(0, 60_000).default(1000),
  LOAD_RETRY_AFTER_SECONDS: int(1, 3600).default(1),
  // Stream sources (src/streams): how often a worker looks for STREAM pipelines started or stopped.
  STREAM_POLL_INTERVAL_MS: int(100, 600_000).default(2000),

  // Credit packs paid through Stripe Checkout (src/payments); unset: only manual invoices.
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  /** The endpoint's signing secret (whsec_…): webhooks without a valid signature grant nothing. */
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  /** Stripe's API; another origin only for a stand-in (the tests' loopback server). */
  STRIPE_API_URL: z.url().default("https://api.stripe.com"),
  /** Where Stripe Checkout sends the buyer back; `{ORDER_ID}` is replaced by the order's id. */
  CHECKOUT_SUCCESS_URL: z.url().default("http://localhost:3000/credits/paid?order={ORDER_ID}"),
  CHECKOUT_CANCEL_URL: z.url().default("http://localhost:3000/credits/cancelled?order={ORDER_ID}"),
  /** MONTHLY purchases are renewed this long before their term ends (purchases/renewal.ts). */
  RENEWAL_LEAD_SECONDS: int(0, 7 * 24 * 3600).default(3600),
});

export type Env = z.input<typeof configSchema>;
type Parsed = z.output<typeof configSchema>;

export interface Config extends Omit<Parsed, "GRAPHQL_INTROSPECTION" | "GRAPHQL_IDE"> {
  GRAPHQL_INTROSPECTION: boolean;
  GRAPHQL_IDE: boolean;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses the environment, reporting every problem at once rather than the first. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const known = Object.fromEntries(
    Object.keys(configSchema.shape)
      .filter((key) => env[key] !== undefined && env[key] !== "")
      .map((key) => [key, env[key]]),
  );
  const result = configSchema.safeParse(known);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`),
    );
  }
  const parsed = result.data;
  const problems: string[] = [];
  if (parsed.NODE_ENV === "production") {
    if (parsed.JWT_SECRET === DEV_JWT_SECRET) problems.push("JWT_SECRET: must be set in production");
    if (parsed.ENCRYPTION_KEY === DEV_ENCRYPTION_KEY) {
      problems.push("ENCRYPTION_KEY: must be set in production");
    }
  }
  if ((parsed.TLS_CERT_FILE === undefined) !== (parsed.TLS_KEY_FILE === undefined)) {
    problems.push("TLS_CERT_FILE, TLS_KEY_FILE: set both or neither");
  }
  if (parsed.CLICKHOUSE_CLUSTER && parsed.CLICKHOUSE_URL.startsWith("embedded:")) {
    problems.push(
      "CLICKHOUSE_CLUSTER: needs CLICKHOUSE_URL to name a server of the cluster, not the embedded engine",
    );
  }
  if ((parsed.STRIPE_SECRET_KEY === undefined) !== (parsed.STRIPE_WEBHOOK_SECRET === undefined)) {
    problems.push("STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET: set both or neither");
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ...parsed,
    GRAPHQL_INTROSPECTION: parsed.GRAPHQL_INTROSPECTION ?? parsed.NODE_ENV !== "production",
    GRAPHQL_IDE: parsed.GRAPHQL_IDE ?? parsed.NODE_ENV !== "production",
  };
}

/** The first admin's password for `datahus create-admin`, when given in the environment. */
export function adminPasswordFromEnvironment(env: Record<string, string | undefined> = process.env) {
  return env.DATAHUS_ADMIN_PASSWORD || undefined;
}

/**
 * Where the publisher's commands (`datahus upload`, `follow`, `export`) send their requests and
 * the key they send: DATAHUS_URL (default the local API) and DATAHUS_API_KEY (required).
 */
export function clientSettingsFromEnvironment(env: Record<string, string | undefined> = process.env) {
  const url = env.DATAHUS_URL || "http://127.0.0.1:4000";
  const problems: string[] = [];
  if (!/^https?:\/\/[^\s]+$/.test(url)) problems.push("DATAHUS_URL: must be the API's http(s) URL");
  if (!env.DATAHUS_API_KEY) problems.push("DATAHUS_API_KEY: must be set (an API key of the publisher)");
  if (problems.length > 0) throw new ConfigError(problems);
  return { url, apiKey: env.DATAHUS_API_KEY! };
}
