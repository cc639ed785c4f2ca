// The domain services, built once per process from the stores. Resolvers, REST routes and jobs
// reach data only through these.
import type { Config } from "./config.js";
import { UsageRecorder } from "./credits/usage-recorder.js";
import type { Logger } from "./observability/logger.js";
import type { ClickHouse } from "./db/clickhouse.js";
import { CatalogService } from "./catalog/catalog.service.js";
import { CreditService } from "./credits/credit.service.js";
import type { PrismaClient } from "./generated/prisma/client.js";
import { AccountService } from "./identity/account.service.js";
import { ApiKeyService } from "./identity/api-key.service.js";
import { AuthService, type NonceStore } from "./identity/auth.service.js";
import { Encryption } from "./db/encryption.js";
import { PipelineService } from "./pipelines/pipeline.service.js";
import { PipelineRunner } from "./pipelines/pipeline.runner.js";
import { ReadService } from "./records/read.service.js";
import { RecordsReader } from "./records/records.reader.js";
import { SaleService } from "./sales/sale.service.js";
import { SourceService } from "./sources/source.service.js";
import type { ConnectorSettings } from "./sources/connectors/registry.js";
import { EventBus } from "./events/events.js";
import type { JobQueue } from "./jobs/queue.js";

export interface Services {
  accounts: AccountService;
  apiKeys: ApiKeyService;
  auth: AuthService;
  catalog: CatalogService;
  credits: CreditService;
  pipelines: PipelineService;
  /** Runs pipelines (the worker's PIPELINE_RUN_QUEUE handler). */
  runner: PipelineRunner;
  reads: ReadService;
  sales: SaleService;
  /** Batches usage events to ClickHouse; close() it on shutdown to write the last ones. */
  usage: UsageRecorder;
  sources: SourceService;
  /** Tells listeners (subscriptions, deliveries) what changed. */
  events: EventBus;
  /** Hands work to the worker (pg-boss). */
  jobs: JobQueue;
}

/** For processes that never enqueue (CLI commands): any attempt is a programming error. */
export const noJobQueue: JobQueue = {
  send: () => Promise.reject(new Error("this process has no job queue")),
  schedule: () => Promise.reject(new Error("this process has no job queue")),
  unschedule: () => Promise.reject(new Error("this process has no job queue")),
  cancel: () => Promise.reject(new Error("this process has no job queue")),
};

export function createServices(
  prisma: PrismaClient,
  clickhouse: ClickHouse,
  config: Config,
  nonces: NonceStore,
  log: Logger,
  jobs: JobQueue = noJobQueue,
): Services {
  const limits = { maxLimit: config.MAX_LIMIT };
  const encryption = new Encryption(config.ENCRYPTION_KEY);
  const usage = new UsageRecorder(clickhouse, log);
  const credits = new CreditService(prisma, clickhouse, limits, usage);
  const reader = new RecordsReader(clickhouse, config.CLICKHOUSE_DATABASE, limits);
  // What connectors need from the server, shared by source checks and the runner.
  const connectors: ConnectorSettings = { fileRoot: config.FILE_SOURCE_ROOT };
  const sources = new SourceService(prisma, encryption, limits, log, connectors);
  const events = new EventBus(log);
  return {
    accounts: new AccountService(prisma, limits),
    apiKeys: new ApiKeyService(prisma, config, encryption, limits),
    auth: new AuthService(prisma, config, encryption, nonces),
    catalog: new CatalogService(prisma, clickhouse, config, limits),
    credits,
    reads: new ReadService(prisma, clickhouse, reader, credits.ledger, limits, usage),
    usage,
    pipelines: new PipelineService(prisma, clickhouse, config, jobs, limits),
    runner: new PipelineRunner(prisma, clickhouse, config, sources, connectors, events, jobs, log),
    sales: new SaleService(prisma, limits),
    sources,
    events,
    jobs,
  };
}
