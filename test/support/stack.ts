// Boots the real app on real PostgreSQL, ClickHouse and Redis, on a free loopback port, with
// databases of its own. Tests talk to it over HTTP only.
import { Writable } from "node:stream";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { createApp, type App } from "../../src/app.js";
import type { Env } from "../../src/config.js";
import { createClickHouse } from "../../src/db/clickhouse.js";
import { migrateClickHouse } from "../../src/db/clickhouse-migrations.js";
import { layoutOf } from "../../src/db/table-layout.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { createLogger } from "../../src/observability/logger.js";
import { createBoss } from "../../src/jobs/boss.js";
import { startJobs } from "../../src/jobs/worker.js";
import { SignupDocument } from "../generated/graphql.js";
import { baseConfig, freshPostgres, uniqueName } from "./databases.js";

export interface GraphQLResponse<T> {
  status: number;
  headers: Headers;
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: Record<string, unknown> }[];
}

export interface TestStack {
  url: string;
  app: App;
  /** Every log line the app wrote, parsed. */
  logs: Record<string, unknown>[];
  /** Raw log text, for asserting that something never appears. */
  logText(): string;
  graphql<TData, TVars>(
    document: TypedDocumentNode<TData, TVars>,
    variables?: TVars,
    headers?: Record<string, string>,
  ): Promise<GraphQLResponse<TData>>;
  /** Signs up through the API; returns the key's headers and ids. */
  signup(name: string, role?: "BUYER" | "PUBLISHER", password?: string): Promise<TestAccount>;
  /** An admin (made as the CLI does) and its session headers. */
  admin(): Promise<TestAccount>;
  close(): Promise<void>;
}

export interface TestAccount {
  accountId: string; // global id
  rawAccountId: string;
  userId: string;
  email: string;
  secret: string;
  headers: Record<string, string>;
}

export interface StackOptions {
  /** Also run a pg-boss worker in this process (the app's services, every job handler). */
  worker?: boolean;
  /**
   * A second API process of that stack: another app on its own port, with its own stores,
   * connections and Redis subscribers, on the same PostgreSQL and ClickHouse databases and the
   * same Redis prefix. Its close() leaves the databases to their owner.
   */
  sharing?: TestStack;
}

export async function startStack(overrides: Env = {}, options: StackOptions = {}): Promise<TestStack> {
  const shared = options.sharing?.app.config;
  const postgres = shared
    ? { url: shared.DATABASE_URL, drop: async () => {} }
    : await freshPostgres(baseConfig(overrides));
  const clickhouseDatabase = shared?.CLICKHOUSE_DATABASE ?? uniqueName("t");
  const config = baseConfig({
    PORT: "0",
    // Tests send many anonymous requests from 127.0.0.1; the limit itself is tested on its own.
    ANONYMOUS_RATE_LIMIT_PER_MINUTE: "1000000",
    // Tests fire bursts of concurrent requests on a busy machine; shedding is tested on its own.
    LOAD_MAX_IN_FLIGHT: "0",
    LOAD_MAX_EVENT_LOOP_DELAY_MS: "0",
    CLICKHOUSE_DATABASE: clickhouseDatabase,
    REDIS_KEY_PREFIX: shared?.REDIS_KEY_PREFIX ?? `${uniqueName("t")}:`,
    ...overrides,
    // An overridden DATABASE_URL names the server; the stack's database is its own clone on it.
    DATABASE_URL: postgres.url,
  });
  const admin = createClickHouse(config, { database: "default" });
  const clickhouseUp = await admin.ping();
  if (clickhouseUp && !shared) await migrateClickHouse(admin, clickhouseDatabase);

  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  const app = await createApp(config, { log: createLogger(config, sink) });
  const url = await app.listen();
  const worker = options.worker
    ? await startJobs(config, "worker", app.services, app.log, createBoss(config, "worker"))
    : undefined;

  let adminAccount: TestAccount | undefined;
  const stack: TestStack = {
    url,
    app,
    get logs() {
      return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    logText: () => lines.join("\n"),
    async graphql(document, variables, headers = {}) {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ query: print(document), variables }),
      });
      const body = (await response.json()) as Omit<GraphQLResponse<never>, "status" | "headers">;
      return { status: response.status, headers: response.headers, ...body };
    },
    async signup(name, role = "BUYER", password) {
      const email = `${uniqueName(name.toLowerCase().replace(/\W+/g, ""))}@example.com`;
      const res = await stack.graphql(SignupDocument, { input: { name, email, role, password } });
      if (!res.data) throw new Error(`signup failed: ${JSON.stringify(res.errors)}`);
      const { signup } = res.data;
      return {
        accountId: signup.account.id,
        rawAccountId: decodeGlobalId(signup.account.id).id,
        userId: signup.user.id,
        email,
        secret: signup.apiKeySecret,
        headers: { "x-api-key": signup.apiKeySecret },
      };
    },
    async admin() {
      if (adminAccount) return adminAccount;
      const email = `${uniqueName("admin")}@example.com`;
      const password = "correct horse battery staple";
      const created = await app.services.auth.createAdmin({ name: "Platform", email, password });
      adminAccount = {
        accountId: encodeGlobalId("Account", created.account.id),
        rawAccountId: created.account.id,
        userId: encodeGlobalId("User", created.user.id),
        email,
        secret: created.secret,
        headers: { "x-api-key": created.secret },
      };
      return adminAccount;
    },
    async close() {
      await worker?.stop({ graceful: true, timeout: 5_000 });
      await app.close();
      if (clickhouseUp && !shared) {
        await admin.command(layoutOf(admin).dropDatabase(clickhouseDatabase));
      }
      await admin.close();
      await postgres.drop();
    },
  };
  return stack;
}
