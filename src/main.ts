#!/usr/bin/env node
// `datahus <command>`: one binary for every process role.
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  ConfigError,
  adminPasswordFromEnvironment,
  clientSettingsFromEnvironment,
  loadConfig,
  type Config,
} from "./config.js";
import {
  CliFailure,
  EXIT,
  PublisherClient,
  exportTo,
  follow,
  upload,
  type Terminal,
} from "./cli/publisher.js";
import { AppError } from "./errors.js";
import type { FileFormat } from "./sources/formats/index.js";
import { migrateClickHouse } from "./db/clickhouse-migrations.js";
import { clickHouseEngine } from "./db/clickhouse.js";
import { findProjectRoot, migratePostgres } from "./db/postgres-migrate.js";
import { seedPlans } from "./db/seed-plans.js";
import { createServices } from "./services.js";
import { closeStores, createStores, forwardLiveEvents, nonceStore } from "./stores.js";
import { createBoss } from "./jobs/boss.js";
import { bossQueue } from "./jobs/queue.js";
import { serveWorkerMetricsFor, startJobs } from "./jobs/worker.js";
import { StreamSupervisor } from "./streams/stream.supervisor.js";
import { collectWhenIdle, exposedGc } from "./observability/idle-collection.js";
import { createLogger, type Logger } from "./observability/logger.js";

const USAGE = `usage: datahus <command> [options]

  all                 start the API and the worker in one process (what the embedded
                      ClickHouse needs; Redis optional)
  serve               start the GraphQL/HTTP API
  worker              start the background job worker (pg-boss)
  migrate             apply PostgreSQL and ClickHouse migrations and seed the plans
  seed [--force]      add the demo marketplace (publisher, buyer, datasets from demo/) once;
                      prints the demo buyer's API key; skipped in production without --force
  create-admin --email EMAIL --name NAME
                      create the first administrator; reads the password from
                      DATAHUS_ADMIN_PASSWORD or standard input, prints its API key once
  emit-schema         write schema.graphql from the code
  emit-schema --check exit 1 when schema.graphql differs from the code

Publisher commands (a client of the HTTP API: DATAHUS_URL, DATAHUS_API_KEY):
  upload FILE --dataset SLUG [--follow]
                      push a CSV, TSV, JSON, NDJSON or Parquet file (.gz too) to a dataset's
                      PUSH pipeline; prints each run id
  run PIPELINE_ID [--follow]
                      queue a run of a pipeline (any source); prints its id
  follow RUN_ID...    show a run's progress until it ends; exit 1 unless it SUCCEEDED
  export SLUG --format ndjson|csv|tsv|parquet --out FILE
                      stream a dataset to a file

\`datahus <command> --help\` describes one command. Settings come from the environment (.env.example).
`;

/** Each command's help and the options it takes; `--help` prints the help and does nothing else. */
const COMMANDS: Record<string, { help: string; options: string[] }> = {
  all: {
    help:
      "usage: datahus all\n\nStart the API and the worker in one process (the embedded ClickHouse needs it; " +
      "Redis optional); stops cleanly on SIGTERM or SIGINT.\n",
    options: [],
  },
  serve: {
    help: "usage: datahus serve\n\nStart the GraphQL/HTTP API on HOST:PORT; stops cleanly on SIGTERM or SIGINT.\n",
    options: [],
  },
  worker: {
    help:
      "usage: datahus worker\n\nStart the background job worker (syncs, deliveries, exports); stops cleanly on SIGTERM or SIGINT.\n" +
      "With WORKER_METRICS_PORT set it serves GET /metrics (Prometheus) on WORKER_METRICS_HOST.\n",
    options: [],
  },
  migrate: {
    help: "usage: datahus migrate\n\nApply PostgreSQL and ClickHouse migrations (offline) and seed the plans. Safe to repeat.\n",
    options: [],
  },
  seed: {
    help:
      "usage: datahus seed [--force]\n\nAdd the demo marketplace once and print the demo buyer's API key.\n" +
      "  --force   also in production\n",
    options: ["--force"],
  },
  "create-admin": {
    help:
      "usage: datahus create-admin --email EMAIL --name NAME\n\nCreate an administrator. The password is read " +
      "from DATAHUS_ADMIN_PASSWORD or standard input; its API key is printed once.\n",
    options: ["--email", "--name"],
  },
  upload: {
    help:
      "usage: datahus upload FILE --dataset SLUG [--format FORMAT] [--batch-bytes N] [--follow]\n\n" +
      "Push FILE's records to the dataset's PUSH pipeline, as NDJSON pushes of at most N bytes\n" +
      "(default 8388608; keep it under the server's INGEST_MAX_BYTES). Each push queues a run; its\n" +
      "id is printed on a line of its own. Progress goes to stderr.\n" +
      "  --dataset SLUG     the dataset (it needs a pipeline with a PUSH source)\n" +
      "  --format FORMAT    CSV, TSV, JSON, NDJSON or PARQUET (default: from the file name; .gz unzips)\n" +
      "  --batch-bytes N    largest push\n" +
      "  --follow           then follow each run until it ends (as `datahus follow`)\n" +
      "Settings: DATAHUS_URL (default http://127.0.0.1:4000), DATAHUS_API_KEY.\n" +
      "Exit status: 0 pushed (and, with --follow, every run SUCCEEDED), 1 failed, 2 usage.\n",
    options: ["--dataset", "--format", "--batch-bytes", "--follow"],
  },
  run: {
    help:
      "usage: datahus run PIPELINE_ID [--follow]\n\nQueue a run of the pipeline now (as runPipeline) and print " +
      "its id; with --follow, follow it until it ends (as `datahus follow`).\n" +
      "Settings: DATAHUS_URL, DATAHUS_API_KEY. Exit status: 0 queued (with --follow: SUCCEEDED), 1 failed " +
      "(409 while another run of the pipeline goes), 2 usage.\n",
    options: ["--follow"],
  },
  follow: {
    help:
      "usage: datahus follow RUN_ID...\n\nShow each pipeline run's status, rows and progress until it " +
      "ends (a line per run on stdout, progress on stderr).\n" +
      "Settings: DATAHUS_URL, DATAHUS_API_KEY. Exit status: 0 every run SUCCEEDED, 1 otherwise, 2 usage.\n",
    options: [],
  },
  export: {
    help:
      "usage: datahus export SLUG [--format ndjson|csv|tsv|parquet] [--out FILE]\n\n" +
      "Stream a dataset (priced as a read of every row) to FILE (default SLUG.FORMAT), with progress on\n" +
      "stderr. Settings: DATAHUS_URL, DATAHUS_API_KEY. Exit status: 0 done, 1 failed, 2 usage.\n",
    options: ["--format", "--out"],
  },
  "emit-schema": {
    help:
      "usage: datahus emit-schema [--check]\n\nWrite schema.graphql from the code.\n" +
      "  --check   write nothing; exit 1 when schema.graphql differs from the code\n",
    options: ["--check"],
  },
};

const wantsHelp = (args: string[]) => args.includes("--help") || args.includes("-h");

/** The first option the command does not take, if any (values after options are skipped). */
function unknownOption(args: string[], allowed: string[]): string | undefined {
  return args.find((arg) => arg.startsWith("-") && !allowed.includes(arg));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return 0;
  }
  const spec = COMMANDS[command];
  if (!spec) {
    process.stderr.write(`datahus: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(spec.help);
    return 0;
  }
  const unknown = unknownOption(rest, spec.options);
  if (unknown) {
    process.stderr.write(`datahus ${command}: unknown option "${unknown}"\n\n${spec.help}`);
    return 2;
  }
  switch (command) {
    case "all":
      return all(loadConfig());
    case "serve":
      return serve(loadConfig());
    case "worker":
      return worker(loadConfig());
    case "migrate":
      return migrate(loadConfig());
    case "seed":
      return seed(loadConfig(), rest);
    case "create-admin":
      return createAdmin(loadConfig(), rest);
    case "upload":
    case "run":
    case "follow":
    case "export":
      return publisherCommand(command, rest, spec.help);
    default:
      return emitSchema(rest.includes("--check"));
  }
}

// The API's module graph (Fastify, the GraphQL schema, live subscriptions) loads only in the roles
// that serve it: an idle worker without it peaks ~35 MiB lower (issue 13).
const loadApp = () => import("./app.js");

async function serve(config: Config): Promise<number> {
  const { createApp } = await loadApp();
  const app = await createApp(config);
  const url = await app.listen();
  app.log.info({ url }, "datahus API listening");
  const stopCollecting = collectWhenIdle({ gc: exposedGc(), log: app.log });
  await untilSignal(app.log, config.SHUTDOWN_TIMEOUT_MS, async () => {
    stopCollecting();
    await app.close();
  });
  return 0;
}

/**
 * The API and the worker in one process, sharing stores, services and the event bus: the only
 * way to run on the embedded ClickHouse (its data directory belongs to one process), and the
 * simplest for a small deployment. Without REDIS_URL, rate limits and live events stay here.
 */
async function all(config: Config): Promise<number> {
  const { createApp } = await loadApp();
  const app = await createApp(config);
  const log = app.log.child({ role: "worker" });
  const jobs = await startJobs(config, "worker", app.services, log, createBoss(config, "worker"));
  const metrics = await serveWorkerMetricsFor(config, app.services, jobs, log);
  const url = await app.listen();
  const { engine } = app.stores.clickhouse;
  app.log.info({ url, engine, redis: config.REDIS_URL ? "on" : "off" }, "datahus API and worker listening");
  const stopCollecting = collectWhenIdle({ gc: exposedGc(), log: app.log });
  await untilSignal(app.log, config.SHUTDOWN_TIMEOUT_MS, async () => {
    stopCollecting();
    await metrics?.close();
    await jobs.stop({ graceful: true, timeout: config.SHUTDOWN_TIMEOUT_MS });
    await app.close();
  });
  return 0;
}

async function worker(config: Config): Promise<number> {
  const log = createLogger(config).child({ role: "worker" });
  if (clickHouseEngine(config.CLICKHOUSE_URL).kind === "embedded") {
    // Its data directory would be the API's too, and one process holds it.
    log.error(
      "the embedded ClickHouse belongs to one process: run `datahus all`, or point CLICKHOUSE_URL at a server",
    );
    return 2;
  }
  const stores = createStores(config, log);
  const boss = createBoss(config, "worker");
  const services = createServices(
    stores.prisma,
    stores.clickhouse,
    config,
    nonceStore(stores.redis),
    log,
    bossQueue(boss),
  );
  const livePublisher = forwardLiveEvents(config, log, services.events);
  await startJobs(config, "worker", services, log, boss);
  const metrics = await serveWorkerMetricsFor(config, services, boss, log);
  const streams = new StreamSupervisor(
    stores.prisma,
    stores.clickhouse,
    config,
    services.sources,
    services.events,
    log.child({ part: "streams" }),
  );
  streams.start();
  // A large run grows the heap as a burst of requests does; an idle worker gives it back.
  const stopCollecting = collectWhenIdle({ gc: exposedGc(), log });
  // pg-boss stop waits for active jobs up to the timeout, then lets them be retried elsewhere.
  await untilSignal(log, config.SHUTDOWN_TIMEOUT_MS, async () => {
    stopCollecting();
    await metrics?.close();
    await streams.stop();
    await boss.stop({ graceful: true, timeout: config.SHUTDOWN_TIMEOUT_MS });
    await services.usage.close();
    await services.webhooks.close();
    await livePublisher?.quit().catch(() => livePublisher.disconnect());
    await closeStores(stores);
  });
  return 0;
}

async function migrate(config: Config): Promise<number> {
  const log = createLogger(config).child({ role: "migrate" });
  await migratePostgres(config.DATABASE_URL, (msg) => log.info(msg));
  const stores = createStores(config, log);
  try {
    const { applied } = await migrateClickHouse(stores.clickhouse, config.CLICKHOUSE_DATABASE);
    log.info({ applied }, "ClickHouse migrations applied");
    await seedPlans(stores.prisma);
    log.info("plans seeded");
  } finally {
    await closeStores(stores);
  }
  return 0;
}

async function seed(config: Config, args: string[]): Promise<number> {
  // Demo credits are real credits: in production they could buy real publishers' data.
  if (config.NODE_ENV === "production" && !args.includes("--force")) {
    process.stderr.write("seed: skipped in production (NODE_ENV=production); --force seeds anyway\n");
    return 0;
  }
  const log = createLogger(config).child({ role: "seed" });
  const stores = createStores(config, log);
  try {
    const services = createServices(stores.prisma, stores.clickhouse, config, nonceStore(stores.redis), log);
    const { seedDemo } = await import("./demo/seed.js");
    await seedDemo(services, stores, config, log);
    return 0;
  } finally {
    await closeStores(stores);
  }
}

/** The value after `--name`, if given. */
function optionValue(args: string[], name: string): string | undefined {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
}

/** The arguments that are neither options nor the values of `valued` options. */
function positionals(args: string[], valued: string[]): string[] {
  return args.filter((arg, i) => !arg.startsWith("-") && !valued.includes(args[i - 1] ?? ""));
}

const FILE_FORMATS: FileFormat[] = ["CSV", "TSV", "JSON", "NDJSON", "PARQUET"];

async function publisherCommand(command: string, args: string[], help: string): Promise<number> {
  const term: Terminal = {
    out: (text) => process.stdout.write(text),
    err: (text) => process.stderr.write(text),
    tty: process.stderr.isTTY === true,
  };
  const usage = (problem: string) => {
    process.stderr.write(`datahus ${command}: ${problem}\n\n${help}`);
    return EXIT.usage;
  };
  const [first, ...more] = positionals(args, ["--dataset", "--format", "--batch-bytes", "--out"]);
  try {
    const client = new PublisherClient(clientSettingsFromEnvironment());
    const followAll = async (runs: string[]) => {
      let ok = true;
      for (const run of runs) ok = (await follow(client, run, term)).status === "SUCCEEDED" && ok;
      return ok ? EXIT.ok : EXIT.failed;
    };
    if (command === "follow") return first ? await followAll([first, ...more]) : usage("give a run id");
    if (command === "run") {
      if (!first || more.length) return usage("give one pipeline id");
      const runId = await client.startRun(first);
      term.out(`${runId}\n`);
      return args.includes("--follow") ? await followAll([runId]) : EXIT.ok;
    }
    if (command === "export") {
      if (!first || more.length) return usage("give one dataset slug");
      const format = (optionValue(args, "format") ?? "ndjson").toLowerCase();
      if (!["ndjson", "csv", "tsv", "parquet"].includes(format)) return usage(`unknown format "${format}"`);
      await exportTo(
        client,
        { slug: first, format, out: optionValue(args, "out") ?? `${first}.${format}` },
        term,
      );
      return EXIT.ok;
    }
    const slug = optionValue(args, "dataset");
    const batchBytes = Number(optionValue(args, "batch-bytes") ?? 8 * 1024 * 1024);
    if (!first || more.length || !slug) return usage("give one FILE and --dataset SLUG");
    if (!Number.isInteger(batchBytes) || batchBytes < 1024)
      return usage("--batch-bytes must be 1024 or more");
    const format = optionValue(args, "format")?.toUpperCase() as FileFormat | undefined;
    if (format && !FILE_FORMATS.includes(format)) return usage(`unknown format "${format}"`);
    const runs = await upload(client, { file: first, slug, format, batchBytes }, term);
    return args.includes("--follow") ? await followAll(runs) : EXIT.ok;
  } catch (error) {
    if (error instanceof CliFailure || error instanceof AppError) {
      process.stderr.write(`datahus ${command}: ${error.message}\n`);
      return EXIT.failed;
    }
    throw error;
  }
}

async function createAdmin(config: Config, args: string[]): Promise<number> {
  const option = (name: string) => optionValue(args, name);
  const email = option("email");
  const name = option("name") ?? "Platform";
  if (!email) {
    process.stderr.write("usage: datahus create-admin --email EMAIL [--name NAME]\n");
    return 2;
  }
  const password = adminPasswordFromEnvironment() ?? (await readStdin()).trim();
  const log = createLogger(config).child({ role: "cli" });
  const stores = createStores(config, log);
  try {
    const { auth } = createServices(stores.prisma, stores.clickhouse, config, nonceStore(stores.redis), log);
    const { secret, user } = await auth.createAdmin({
      email,
      name,
      password,
    });
    // The one place a secret is printed: to the operator who asked for it, never to the log.
    process.stdout.write(`admin ${user.email} created\nAPI key (shown once): ${secret}\n`);
    return 0;
  } finally {
    await closeStores(stores);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

async function emitSchema(check: boolean): Promise<number> {
  const path = join(findProjectRoot(), "schema.graphql");
  const { printGraphqlSchema } = await import("./graphql/schema.js");
  const sdl = printGraphqlSchema();
  if (!check) {
    await writeFile(path, sdl);
    return 0;
  }
  const committed = await readFile(path, "utf8").catch(() => "");
  if (committed === sdl) return 0;
  process.stderr.write("schema.graphql is out of date: run `npm run schema:emit` and commit it\n");
  return 1;
}

/** Resolves after SIGTERM/SIGINT and a clean stop, or exits hard when stopping takes too long. */
function untilSignal(log: Logger, timeoutMs: number, stop: () => Promise<unknown>): Promise<void> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, "shutting down");
      const timer = setTimeout(() => {
        log.error({ timeoutMs }, "shutdown timed out; exiting");
        process.exit(1);
      }, timeoutMs);
      timer.unref();
      stop().then(
        () => resolve(),
        (err: unknown) => {
          log.error({ err }, "error during shutdown");
          resolve();
        },
      );
    };
    process.once("SIGTERM", onSignal);
    process.once("SIGINT", onSignal);
  });
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
