// What a buyer's read costs and who may make it: the access rules (OPEN, METERED, PURCHASED),
// the credit reservation before ClickHouse is queried and its settlement after, the usage event.
// Resolvers and REST routes call this; RecordsReader knows nothing of money.
import type { Column } from "../catalog/columns.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { AppError } from "../errors.js";
import { Prisma, type Dataset, type PrismaClient } from "../generated/prisma/client.js";
import type { Ledger, Reservation } from "../credits/ledger.js";
import { aggregateCost, readCost, recordLookupCost } from "../credits/pricing.js";
import type { UsageRecorder } from "../credits/usage-recorder.js";
import { authorize, checkKeyDatasets } from "../identity/authorization.js";
import type { AuthenticatedCaller, Caller } from "../identity/caller.js";
import { readScope } from "../identity/read-scope.js";
import type { Logger } from "../observability/logger.js";
import { pageRequest, type Page, type PageLimits } from "../pagination.js";
import { compileWindow } from "./window.js";
import { compileFilter } from "./filter.js";
import { decodeSortCursor, recordSortTerms } from "./order.js";
import type {
  AggregateArgs,
  AggregateRow,
  RecordPageArgs,
  RecordRow,
  RecordsReader,
} from "./records.reader.js";
import type { DatasetRef } from "./records.writer.js";
import type { RecordFilter } from "./filter.js";
import type { ExportFormat } from "./export.engine.js";

/** What one operation cost, reported in `extensions.cost` and `X-Credits-Remaining`. */
export interface Cost {
  records: number;
  credits: number;
  balance: number;
}

/** Collects the cost of every read in one request. */
export class CostMeter {
  records = 0;
  credits = 0;
  balance: number | null = null;

  add(cost: Cost): void {
    this.records += cost.records;
    this.credits += cost.credits;
    this.balance = cost.balance;
  }
}

export interface ReadContext {
  requestId: string;
  meter: CostMeter;
  log: Pick<Logger, "warn">;
}

/** What an export needs beyond a read: to be stopped when the client goes away, and to log loudly. */
export interface ExportContext extends ReadContext {
  log: Pick<Logger, "warn" | "error">;
  /** Aborts the ClickHouse query (the client disconnected). */
  signal?: AbortSignal;
}

/** A dataset named by slug in a REST call, with its columns (the CSV header). */
export interface DatasetHandle {
  id: string;
  slug: string;
  columns: Column[];
}

/** An export started by {@link ReadService.exportRows}: paid for, rows not sent yet. */
export interface RecordExport {
  dataset: DatasetHandle;
  /** The most rows it sends: those matching when it started, counted before the first byte. */
  total: number;
  /** `total` records, the credits held for them (the price when every row is sent), the balance after the hold. */
  reserved: Cost;
  /** The rows in key order, in batches; stop iterating to stop the ClickHouse query. */
  batches: AsyncIterable<RecordRow[]>;
  /**
   * The export as ClickHouse wrote it in the format asked for (export.engine.ts), when the engine
   * can write this dataset that way; `batches` is then empty. Null: format `batches` in Node.
   */
  bytes: AsyncIterable<Buffer> | null;
  /**
   * Ends the export, once (later calls return the first result): charges the `sent` rows and
   * gives the rest of the hold back (all of it when nothing was sent), records the usage event.
   * Never throws: the rows are already out, so a ledger failure is logged and the hold stays open
   * for reconciliation; null then.
   */
  finish(sent: number): Promise<Cost | null>;
}

export interface Quote {
  /** Credits reserved up front for a read of `first` records. */
  maxCredits: number;
  /** Records the read would return now (min of `first` and the matching rows). */
  records: number;
  credits: number;
  balance: number;
}

/** A dataset's free sample: marked as such wherever it is shown. */
export interface DatasetSample {
  rows: RecordRow[];
  /** The rows the publisher offers (fewer come back when fewer match). */
  size: number;
  filter: RecordFilter | null;
}

/** Samples are a look before buying, not a free read path: a page at most. */
export const MAX_SAMPLE_ROWS = 100;

type Pricing = { kind: "free" } | { kind: "metered"; pricePer100: bigint };

export class ReadService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly reader: RecordsReader,
    private readonly ledger: Ledger,
    private readonly limits: PageLimits,
    private readonly usage: UsageRecorder,
  ) {}

  async page(
    caller: Caller,
    datasetId: string,
    args: RecordPageArgs,
    ctx: ReadContext,
  ): Promise<Page<RecordRow>> {
    const { who, dataset, pricing } = await this.open(caller, datasetId);
    // Bad arguments are refused before anything is reserved: a rejected read writes nothing.
    const request = pageRequest(args, this.limits);
    compileFilter(ref(dataset), args.filter);
    const terms = recordSortTerms(ref(dataset).columns, args.orderBy);
    const anchor = request.after ?? request.before;
    if (anchor !== null) decodeSortCursor(terms, anchor, request.after !== null ? "after" : "before");
    const size = request.size;
    return this.charged(
      who,
      dataset,
      pricing,
      "records",
      ctx,
      (p) => readCost(size, p),
      async () => {
        const page = await this.reader.page(ref(dataset), args);
        return { result: page, records: page.items.length };
      },
    );
  }

  async record(caller: Caller, datasetId: string, key: string, ctx: ReadContext): Promise<RecordRow | null> {
    const { who, dataset, pricing } = await this.open(caller, datasetId);
    return this.charged(who, dataset, pricing, "record", ctx, recordLookupCost, async () => {
      const row = await this.reader.byKey(ref(dataset), key);
      return { result: row, records: row ? 1 : 0, fixed: row !== null };
    });
  }

  async aggregate(
    caller: Caller,
    datasetId: string,
    args: AggregateArgs,
    ctx: ReadContext,
  ): Promise<Page<AggregateRow>> {
    const { who, dataset, pricing } = await this.open(caller, datasetId);
    compileFilter(ref(dataset), args.filter);
    const now = new Date();
    compileWindow(ref(dataset).columns, args.window, now); // refuse a bad window before charging
    return this.charged(who, dataset, pricing, "aggregate", ctx, aggregateCost, async () => {
      const page = await this.reader.aggregate(ref(dataset), args, now);
      return { result: page, records: page.items.length, fixed: true };
    });
  }

  /** Free: what `records(first:, filter:)` would cost now, without reading any record. */
  async quote(caller: Caller, datasetId: string, first: number, filter: RecordFilter | null): Promise<Quote> {
    const { who, dataset, pricing } = await this.open(caller, datasetId);
    const matching = Math.min(first, await this.reader.count(ref(dataset), filter));
    const balance = Number(await this.ledger.balance(who.accountId));
    if (pricing.kind === "free") return { maxCredits: 0, records: matching, credits: 0, balance };
    return {
      maxCredits: Number(readCost(first, pricing.pricePer100)),
      records: matching,
      credits: Number(readCost(matching, pricing.pricePer100)),
      balance,
    };
  }

  /** Free: rows matching the filter (Dataset.records.totalCount), for callers who may read them. */
  async count(caller: Caller, datasetId: string, filter: RecordFilter | null): Promise<number> {
    const { dataset } = await this.open(caller, datasetId);
    return this.reader.count(ref(dataset), filter);
  }

  /**
   * Checks that the caller may read the dataset's records, under the rules of a read (NOT_FOUND,
   * FORBIDDEN with `requiresPurchase` for a PURCHASED dataset not bought), reading and charging
   * nothing. For live subscriptions to a dataset's changes.
   */
  async checkReadable(caller: Caller, datasetId: string): Promise<void> {
    await this.open(caller, datasetId);
  }

  /**
   * The dataset's free sample, for anyone who may see the dataset (anonymous callers too, for a
   * published one): the publisher's chosen rows, never charged, nothing written to the ledger.
   * null when the publisher offers none.
   */
  async sample(caller: Caller, datasetId: string): Promise<DatasetSample | null> {
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(caller, "dataset")] },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    if (dataset.sampleRows === null) return null;
    const filter = (dataset.sampleFilter ?? null) as RecordFilter | null;
    const page = await this.reader.page(ref(dataset), { first: dataset.sampleRows, filter });
    return { rows: page.items, size: dataset.sampleRows, filter };
  }

  /** The publisher picks the sample: `rows` rows (1..MAX_SAMPLE_ROWS) matching `filter`; null rows removes it. */
  async setSample(
    caller: Caller,
    datasetId: string,
    rows: number | null,
    filter: RecordFilter | null,
  ): Promise<Dataset> {
    const who = authorize(caller, ["PUBLISHER", "datasets:write"]);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(caller, "dataset")] },
    });
    if (!dataset || (dataset.accountId !== who.accountId && who.role !== "ADMIN")) {
      throw new AppError("NOT_FOUND", "Dataset not found");
    }
    if (rows !== null && (!Number.isSafeInteger(rows) || rows < 1 || rows > MAX_SAMPLE_ROWS)) {
      throw new AppError("BAD_USER_INPUT", `rows must be 1 to ${MAX_SAMPLE_ROWS}`, { argument: "rows" });
    }
    if (filter) compileFilter(ref(dataset), filter); // a bad filter is refused now, not at every read
    return this.prisma.dataset.update({
      where: { id: dataset.id },
      data: {
        sampleRows: rows,
        sampleFilter: rows === null || filter === null ? Prisma.DbNull : (filter as Prisma.InputJsonValue),
      },
    });
  }

  /** The largest page a read may ask for (MAX_LIMIT). */
  get maxPageSize(): number {
    return this.limits.maxLimit;
  }

  /**
   * The dataset a REST call names by its slug, if the caller may read records and may see it;
   * else NOT_FOUND (UNAUTHENTICATED/FORBIDDEN first, so a stranger learns nothing of slugs). Its
   * access rule and price are applied by the read itself.
   */
  async datasetBySlug(caller: Caller, slug: string): Promise<DatasetHandle> {
    authorize(caller, ["records:read"]);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ slug }, readScope(caller, "dataset")] },
      select: { id: true, slug: true, columns: true },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    return { id: dataset.id, slug: dataset.slug, columns: dataset.columns as unknown as Column[] };
  }

  /**
   * Starts an export of every record matching `filter`, in key order, under the same access rules
   * and price as `page`. Before anything is sent it counts the matching rows and holds their price
   * (INSUFFICIENT_CREDITS, and nothing sent, when the balance cannot cover it); the stream is capped
   * at that count, so rows written meanwhile can never cost more than was held. The caller sends
   * the batches and calls `finish` with how many rows it sent, whatever happened: complete, client
   * gone or ClickHouse failed mid-stream, the buyer pays for the rows sent and no more.
   */
  async exportRows(
    caller: Caller,
    datasetId: string,
    filter: RecordFilter | null,
    ctx: ExportContext,
    options: { after?: string | null; format?: ExportFormat } = {},
  ): Promise<RecordExport> {
    const started = performance.now();
    const { who, dataset, pricing } = await this.open(caller, datasetId);
    const target = ref(dataset);
    const after = options.after ?? null;
    compileFilter(target, filter); // a bad filter is refused before anything is counted or held
    const total = await this.reader.count(target, filter, after);
    const held = pricing.kind === "metered" ? readCost(total, pricing.pricePer100) : 0n;
    const reservation =
      held > 0n
        ? await this.ledger.reserve(who.accountId, held, {
            reference: `export ${dataset.slug}`,
            datasetId: dataset.id,
            apiKeyId: who.kind === "apiKey" ? who.apiKeyId : null,
          })
        : null;
    let batches: AsyncIterable<RecordRow[]> = noBatches();
    let bytes: AsyncIterable<Buffer> | null = null;
    let balance: bigint;
    try {
      if (total > 0 && options.format) {
        const range = { filter, after, limit: total };
        bytes = await this.reader.exportBytes(target, range, options.format, ctx.signal);
      }
      if (total > 0 && !bytes) batches = await this.reader.stream(target, filter, total, ctx.signal, after);
      balance = await this.ledger.balance(who.accountId);
    } catch (error) {
      if (reservation) await this.ledger.release(reservation);
      throw error;
    }

    let finished: Promise<Cost | null> | null = null;
    const finish = (sent: number) => {
      finished ??= this.finishExport(who, dataset, pricing, reservation, sent, ctx, started);
      return finished;
    };
    return {
      dataset: { id: dataset.id, slug: dataset.slug, columns: target.columns },
      total,
      reserved: { records: total, credits: Number(held), balance: Number(balance) },
      batches,
      bytes,
      finish,
    };
  }

  private async finishExport(
    who: AuthenticatedCaller,
    dataset: Dataset,
    pricing: Pricing,
    reservation: Reservation | null,
    sent: number,
    ctx: ExportContext,
    started: number,
  ): Promise<Cost | null> {
    let credits = 0n;
    let balance: bigint;
    try {
      if (reservation && pricing.kind === "metered" && sent > 0) {
        credits = readCost(sent, pricing.pricePer100);
        const settled = await this.ledger.settle(reservation, credits, {
          sale: { sellerAccountId: dataset.accountId, records: sent },
        });
        balance = settled.balance;
      } else if (reservation) {
        balance = (await this.ledger.release(reservation)).balance;
      } else {
        balance = await this.ledger.balance(who.accountId);
      }
    } catch (err) {
      ctx.log.error(
        { err, reservationId: reservation?.id ?? null, sent, datasetId: dataset.id },
        "could not settle an export; its credit hold stays open",
      );
      return null;
    }
    const cost = { records: sent, credits: Number(credits), balance: Number(balance) };
    ctx.meter.add(cost);
    this.usage.record({
      accountId: who.accountId,
      apiKeyId: who.kind === "apiKey" ? who.apiKeyId : null,
      datasetId: dataset.id,
      operation: "export",
      records: sent,
      credits,
      durationMs: performance.now() - started,
      requestId: ctx.requestId,
    });
    return cost;
  }

  /** The dataset, if the caller may read its records, and how reads are priced for them. */
  private async open(
    caller: Caller,
    datasetId: string,
  ): Promise<{ who: AuthenticatedCaller; dataset: Dataset; pricing: Pricing }> {
    const who = authorize(caller, ["records:read"]);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(caller, "dataset")] },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    checkKeyDatasets(who, dataset.id);
    // Publishers read their own data free, whatever its status; admins too.
    if (who.role === "ADMIN" || dataset.accountId === who.accountId)
      return { who, dataset, pricing: { kind: "free" } };
    if (dataset.status !== "PUBLISHED") throw new AppError("NOT_FOUND", "Dataset not found");
    switch (dataset.access) {
      case "OPEN":
        return { who, dataset, pricing: { kind: "free" } };
      case "METERED":
        return { who, dataset, pricing: { kind: "metered", pricePer100: dataset.pricePer100Records } };
      case "PURCHASED":
        if (!(await this.ledger.isEntitled(who.accountId, dataset.id))) {
          throw new AppError("FORBIDDEN", "Buy this dataset first (purchaseDataset)", {
            requiresPurchase: true,
          });
        }
        return { who, dataset, pricing: { kind: "free" } };
    }
  }

  /**
   * Reserves the most the read can cost before ClickHouse is queried (INSUFFICIENT_CREDITS and
   * nothing read when the balance cannot cover it), then charges what was returned and releases
   * the rest. A failed read releases everything.
   */
  private async charged<T>(
    who: AuthenticatedCaller,
    dataset: Dataset,
    pricing: Pricing,
    operation: string,
    ctx: ReadContext,
    maxCost: (pricePer100: bigint) => bigint,
    read: () => Promise<{ result: T; records: number; fixed?: boolean }>,
  ): Promise<T> {
    const started = performance.now();
    let reservation: Reservation | null = null;
    if (pricing.kind === "metered") {
      reservation = await this.ledger.reserve(who.accountId, maxCost(pricing.pricePer100), {
        reference: `${operation} ${dataset.slug}`,
        datasetId: dataset.id,
        apiKeyId: who.kind === "apiKey" ? who.apiKeyId : null,
      });
    }
    let outcome: { result: T; records: number; fixed?: boolean };
    try {
      outcome = await read();
    } catch (error) {
      if (reservation) await this.ledger.release(reservation);
      throw error;
    }
    let credits = 0n;
    let balance: bigint;
    if (reservation && pricing.kind === "metered") {
      // Fixed-price operations (lookups that found a record, aggregates) cost their reservation.
      credits = outcome.fixed ? reservation.amount : readCost(outcome.records, pricing.pricePer100);
      const settled = await this.ledger.settle(reservation, credits, {
        sale: { sellerAccountId: dataset.accountId, records: outcome.records },
      });
      balance = settled.balance;
    } else {
      balance = await this.ledger.balance(who.accountId);
    }
    ctx.meter.add({ records: outcome.records, credits: Number(credits), balance: Number(balance) });
    // Usage is reporting, not money: batched off the request path (UsageRecorder).
    this.usage.record({
      accountId: who.accountId,
      apiKeyId: who.kind === "apiKey" ? who.apiKeyId : null,
      datasetId: dataset.id,
      operation,
      records: outcome.records,
      credits,
      durationMs: performance.now() - started,
      requestId: ctx.requestId,
    });
    return outcome.result;
  }
}

// An export of nothing queries nothing.
async function* noBatches(): AsyncGenerator<RecordRow[]> {}

export function ref(dataset: Dataset): DatasetRef {
  return {
    id: dataset.id,
    tableName: dataset.tableName,
    columns: dataset.columns as unknown as Column[],
    keyColumns: dataset.keyColumns,
  };
}
