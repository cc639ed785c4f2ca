// The domain services, built once per process from the stores. Resolvers, REST routes and jobs
// reach data only through these.
import type { Config } from "./config.js";
import { UsageRecorder } from "./credits/usage-recorder.js";
import type { Logger } from "./observability/logger.js";
import type { ClickHouse } from "./db/clickhouse.js";
import { CatalogService } from "./catalog/catalog.service.js";
import { CreditService } from "./credits/credit.service.js";
import { LowCreditWatch } from "./credits/low-credit.js";
import type { PrismaClient } from "./generated/prisma/client.js";
import { AccountService } from "./identity/account.service.js";
import { ApiKeyService } from "./identity/api-key.service.js";
import { AuthService, type NonceStore } from "./identity/auth.service.js";
import { Encryption } from "./db/encryption.js";
import { PipelineService } from "./pipelines/pipeline.service.js";
import { PipelineRunner } from "./pipelines/pipeline.runner.js";
import { ReadService } from "./records/read.service.js";
import { EXPORT_SPLIT, RecordsReader } from "./records/records.reader.js";
import { SaleService } from "./sales/sale.service.js";
import { SourceService } from "./sources/source.service.js";
import type { ConnectorSettings } from "./sources/connectors/registry.js";
import { EventBus } from "./events/events.js";
import type { JobQueue } from "./jobs/queue.js";
import { CorrectionService } from "./ingest/corrections.service.js";
import { PushService } from "./ingest/push.service.js";
import { EventsService } from "./ingest/events.service.js";
import { pushConnector } from "./sources/connectors/push.connector.js";
import { registerConnector } from "./sources/connectors/registry.js";
import { DeliveryService } from "./deliveries/delivery.service.js";
import { DeliverySecrets } from "./deliveries/delivery.secrets.js";
import { WebhookDispatcher } from "./deliveries/webhook.dispatcher.js";
import { DropDispatcher } from "./deliveries/drop.dispatcher.js";
import { DeliveryRouting } from "./deliveries/delivery.routing.js";
import { DeliverySink } from "./deliveries/delivery.sink.js";
import { outboundPolicy } from "./net/outbound.js";
import { AdminService } from "./admin/admin.service.js";
import { EarningsService } from "./earnings/earnings.service.js";
import { WorkerMetrics } from "./observability/worker-metrics.js";
import { CreditPackService } from "./payments/packs.service.js";
import { StripeCheckout } from "./payments/stripe.checkout.js";
import { PurchaseService } from "./purchases/purchase.service.js";
import { StatementService } from "./statements/statement.service.js";
import { InvitationService } from "./admin/invitations.js";

export interface Services {
  accounts: AccountService;
  /** The admin log. */
  admin: AdminService;
  /** Publishers' earnings, payouts, the platform fee and refunds. */
  earnings: EarningsService;
  apiKeys: ApiKeyService;
  auth: AuthService;
  catalog: CatalogService;
  /** Record corrections by key (upsertRecords, deleteRecords, REST PUT/DELETE). */
  corrections: CorrectionService;
  credits: CreditService;
  /** Credit packs: prices, orders, Stripe Checkout and invoices. */
  packs: CreditPackService;
  /** Buyers' entitlements and the renewal of MONTHLY purchases. */
  purchases: PurchaseService;
  /** Monthly statements of both sides of an account's money. */
  statements: StatementService;
  /** Admins' invitations of people to accounts. */
  invitations: InvitationService;
  pipelines: PipelineService;
  /** Pushed records: stored batches and their queued PUSH runs. */
  push: PushService;
  /** The event endpoints: events written in micro-batches through the PUSH pipeline's steps. */
  eventIngest: EventsService;
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
  /** Webhook and file-drop deliveries: their settings and history. */
  deliveries: DeliveryService;
  /** Sends webhooks: the job that makes each try. */
  webhooks: WebhookDispatcher;
  /** SFTP and S3 file drops: the drop job, and the cron tick of SCHEDULE deliveries. */
  drops: DropDispatcher;
  /** Runs, rows, delivery tries and queue depths: the worker's /metrics. */
  workerMetrics: WorkerMetrics;
}

/** Stripe Checkout when its keys are set; otherwise packs are paid by invoice only. */
function stripeCheckout(config: Config): StripeCheckout | null {
  if (!config.STRIPE_SECRET_KEY || !config.STRIPE_WEBHOOK_SECRET) return null;
  return new StripeCheckout({
    secretKey: config.STRIPE_SECRET_KEY,
    webhookSecret: config.STRIPE_WEBHOOK_SECRET,
    apiUrl: config.STRIPE_API_URL,
    successUrl: config.CHECKOUT_SUCCESS_URL,
    cancelUrl: config.CHECKOUT_CANCEL_URL,
  });
}

/** For processes that never enqueue (CLI commands): any attempt is a programming error. */
export const noJobQueue: JobQueue = {
  send: () => Promise.reject(new Error("this process has no job queue")),
  insert: () => Promise.reject(new Error("this process has no job queue")),
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
  // Counted in every process; served by workers (WORKER_METRICS_PORT), where runs and tries happen.
  const workerMetrics = new WorkerMetrics();
  const usage = new UsageRecorder(clickhouse, log, undefined, workerMetrics);
  const events = new EventBus(log);
  const lowCredit = new LowCreditWatch(prisma, events, log);
  const credits = new CreditService(prisma, clickhouse, limits, usage, lowCredit);
  const reader = new RecordsReader(clickhouse, config.CLICKHOUSE_DATABASE, limits, {
    ...EXPORT_SPLIT,
    ranges: config.EXPORT_RANGES,
  });
  const catalog = new CatalogService(prisma, clickhouse, config, limits);
  const push = new PushService(prisma, jobs, config);
  registerConnector("PUSH", pushConnector(push));
  const policy = outboundPolicy(config);
  const secrets = new DeliverySecrets(encryption);
  events.addSink(workerMetrics);
  const webhooks = new WebhookDispatcher(
    prisma,
    secrets,
    events,
    jobs,
    {
      timeoutMs: config.WEBHOOK_TIMEOUT_MS,
      retrySchedule: config.WEBHOOK_RETRY_SCHEDULE,
      jitter: config.WEBHOOK_RETRY_JITTER,
      disableAfter: config.WEBHOOK_DISABLE_AFTER_FAILURES,
      concurrency: config.WEBHOOK_CONCURRENCY,
      policy,
      meter: workerMetrics,
      listenUrl: config.DATABASE_URL,
    },
    log,
  );
  // What connectors need from the server, shared by source checks and the runner.
  const connectors: ConnectorSettings = { fileRoot: config.FILE_SOURCE_ROOT, outbound: policy };
  const sources = new SourceService(prisma, encryption, limits, log, connectors);
  const routing = new DeliveryRouting(prisma);
  const drops = new DropDispatcher(
    prisma,
    secrets,
    reader,
    credits.ledger,
    usage,
    routing,
    events,
    jobs,
    {
      retrySchedule: config.WEBHOOK_RETRY_SCHEDULE,
      jitter: config.WEBHOOK_RETRY_JITTER,
      disableAfter: config.WEBHOOK_DISABLE_AFTER_FAILURES,
      policy,
      meter: workerMetrics,
    },
    log,
  );
  events.addSink(new DeliverySink(routing, webhooks, drops));
  return {
    accounts: new AccountService(prisma, limits, events),
    admin: new AdminService(prisma, limits, events),
    earnings: new EarningsService(prisma, credits.ledger, limits),
    apiKeys: new ApiKeyService(prisma, config, encryption, limits, events),
    auth: new AuthService(prisma, config, encryption, nonces, undefined, (err) =>
      log.warn({ err }, "could not write API keys' lastUsedAt"),
    ),
    catalog,
    corrections: new CorrectionService(prisma, clickhouse, config.CLICKHOUSE_DATABASE, catalog, events),
    credits,
    packs: new CreditPackService(prisma, credits.ledger, stripeCheckout(config), limits, log),
    purchases: new PurchaseService(prisma, events, lowCredit, limits, config.RENEWAL_LEAD_SECONDS * 1000),
    statements: new StatementService(prisma),
    invitations: new InvitationService(prisma),
    reads: new ReadService(prisma, clickhouse, reader, credits.ledger, limits, usage),
    usage,
    pipelines: new PipelineService(prisma, clickhouse, config, jobs, limits),
    push,
    eventIngest: new EventsService(prisma, clickhouse, config.CLICKHOUSE_DATABASE, events, log),
    runner: new PipelineRunner(prisma, clickhouse, config, sources, connectors, events, jobs, log),
    sales: new SaleService(prisma, limits),
    sources,
    events,
    jobs,
    deliveries: new DeliveryService(prisma, secrets, credits.ledger, webhooks, drops, events, policy, limits),
    webhooks,
    drops,
    workerMetrics,
  };
}
