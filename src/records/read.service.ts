// A buyer's reads of records: the access decision (credits/access.ts), paid for through the one
// metering path (credits/metering.ts: hold, read, settle, usage). Resolvers and REST routes hand
// in the dataset row they loaded; RecordsReader knows nothing of money.
import type { Column } from "../catalog/columns.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { AppError } from "../errors.js";
import { Prisma, type Dataset, type PrismaClient } from "../generated/prisma/client.js";
import { decideAccess, deniedError, needsEntitlement, type Reader } from "../credits/access.js";
import type { Ledger } from "../credits/ledger.js";
import { Metering, type Cost, type Granted, type Hold, type Metered } from "../credits/metering.js";
import { aggregateCost, readCost, recordLookupCost } from "../credits/pricing.js";
import type { UsageRecorder } from "../credits/usage-recorder.js";
import { authorize } from "../identity/authorization.js";
import type { AuthenticatedCaller, Caller } from "../identity/caller.js";
import { readScope } from "../identity/read-scope.js";
import type { Logger } from "../observability/logger.js";
import { pageRequest, type Page, type PageLimits } from "../pagination.js";
import { compileWindow } from "./window.js";
import { compileFilter } from "./filter.js";
import { decodeSortCursor, recordSortTerms } from "./order.js";
import { pageColumns } from "./records.reader.js";
import type {
  AggregateArgs,
  AggregateRow,
  RecordPageArgs,
  RecordRow,
  RecordsReader,
} from "./records.reader.js";
import type { DatasetRef } from "./records.writer.js";
import type { RecordFilter } from "./filter.js";
import { capRows, type CountedBytes, type ExportFormat } from "./export.engine.js";

export type { Cost } from "../credits/metering.js";

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
  bytes: CountedBytes | null;
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

/** A read the access decision allowed: who reads, and the decision (free or its price). */
interface Opened {
  who: AuthenticatedCaller;
  decision: Granted;
}

export class ReadService {
  private readonly metering: Metering;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly reader: RecordsReader,
    private readonly ledger: Ledger,
    private readonly limits: PageLimits,
    usage: UsageRecorder,
  ) {
    this.metering = new Metering(ledger, usage);
  }

  /**
   * A page of records. `dataset` is the row the caller loaded under its read scope (the GraphQL
   * parent, a REST route's `datasetBySlug`); it is not read again.
   */
  async page(
    caller: Caller,
    dataset: Dataset,
    args: RecordPageArgs,
    ctx: ReadContext,
  ): Promise<Page<RecordRow>> {
    const opened = await this.open(caller, dataset);
    // Bad arguments are refused before anything is reserved: a rejected read writes nothing.
    const request = pageRequest(args, this.limits);
    compileFilter(ref(dataset), args.filter);
    const terms = recordSortTerms(ref(dataset).columns, args.orderBy);
    pageColumns(ref(dataset).columns, terms, args.columns);
    const anchor = request.after ?? request.before;
    if (anchor !== null) decodeSortCursor(terms, anchor, request.after !== null ? "after" : "before");
    const size = request.size;
    return this.charged(
      opened,
      dataset,
      "records",
      ctx,
      (p) => readCost(size, p),
      async () => {
        const page = await this.reader.page(ref(dataset), args);
        return { result: page, records: page.items.length };
      },
    );
  }

  async record(caller: Caller, dataset: Dataset, key: string, ctx: ReadContext): Promise<RecordRow | null> {
    const opened = await this.open(caller, dataset);
    return this.charged(opened, dataset, "record", ctx, recordLookupCost, async () => {
      const row = await this.reader.byKey(ref(dataset), key);
      return { result: row, records: row ? 1 : 0, fixed: row !== null };
    });
  }

  async aggregate(
    caller: Caller,
    dataset: Dataset,
    args: AggregateArgs,
    ctx: ReadContext,
  ): Promise<Page<AggregateRow>> {
    const opened = await this.open(caller, dataset);
    compileFilter(ref(dataset), args.filter);
    const now = new Date();
    compileWindow(ref(dataset).columns, args.window, now); // refuse a bad window before charging
    return this.charged(opened, dataset, "aggregate", ctx, aggregateCost, async () => {
      const page = await this.reader.aggregate(ref(dataset), args, now);
      return { result: page, records: page.items.length, fixed: true };
    });
  }

  /** Free: what `records(first:, filter:)` would cost now, without reading any record. */
  async quote(caller: Caller, dataset: Dataset, first: number, filter: RecordFilter | null): Promise<Quote> {
    const { who, decision } = await this.open(caller, dataset);
    const matching = Math.min(first, await this.reader.count(ref(dataset), filter));
    const balance = Number(await this.ledger.balance(who.accountId));
    if (decision.kind === "free") return { maxCredits: 0, records: matching, credits: 0, balance };
    return {
      maxCredits: Number(readCost(first, decision.pricePer100)),
      records: matching,
      credits: Number(readCost(matching, decision.pricePer100)),
      balance,
    };
  }

  /** Free: rows matching the filter (Dataset.records.totalCount), for callers who may read them. */
  async count(caller: Caller, dataset: Dataset, filter: RecordFilter | null): Promise<number> {
    await this.open(caller, dataset);
    return this.reader.count(ref(dataset), filter);
  }

  /**
   * Checks that the caller may read the dataset's records, under the rules of a read (NOT_FOUND,
   * FORBIDDEN with `requiresPurchase` for a PURCHASED dataset not bought), reading and charging
   * nothing. For live subscriptions to a dataset's changes.
   */
  async checkReadable(caller: Caller, datasetId: string): Promise<void> {
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(caller, "dataset")] },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    await this.open(caller, dataset);
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
  async datasetBySlug(caller: Caller, slug: string): Promise<Dataset> {
    authorize(caller, ["records:read"]);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ slug }, readScope(caller, "dataset")] },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    return dataset;
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
    dataset: Dataset,
    filter: RecordFilter | null,
    ctx: ExportContext,
    options: { after?: string | null; format?: ExportFormat } = {},
  ): Promise<RecordExport> {
    const { who, decision } = await this.open(caller, dataset);
    const target = ref(dataset);
    const after = options.after ?? null;
    const format = options.format;
    compileFilter(target, filter); // a bad filter is refused before anything is counted or held
    // A text export's statement starts beside the count, with no LIMIT: the engine sorts while the
    // rows are counted and held, and its bytes are cut after the count (capRows). Refused, it is
    // stopped before anything is read. Parquet cannot be cut: it starts after the hold, limited.
    const refused = new AbortController();
    const early =
      format && format !== "parquet"
        ? this.reader.exportBytes(
            target,
            { filter, after, limit: null },
            format,
            ctx.signal ? AbortSignal.any([ctx.signal, refused.signal]) : refused.signal,
          )
        : null;
    early?.catch(() => undefined); // awaited below once the hold stands, or stopped
    let total: number;
    let hold: Hold;
    try {
      total = await this.reader.count(target, filter, after);
      hold = await this.metering.hold(this.metered(who, decision, dataset, "export", ctx), total);
    } catch (error) {
      refused.abort();
      throw error;
    }
    let batches: AsyncIterable<RecordRow[]> = noBatches();
    let bytes: CountedBytes | null = null;
    try {
      if (total > 0 && format) {
        const output = await (early ??
          this.reader.exportBytes(target, { filter, after, limit: total }, format, ctx.signal));
        if (output) bytes = capRows(output, format, total);
      } else refused.abort();
      if (total > 0 && !bytes) batches = await this.reader.stream(target, filter, total, ctx.signal, after);
    } catch (error) {
      await hold.finish(0);
      throw error;
    }
    // The rows are out when it ends: a ledger failure is logged and the hold stays open for
    // reconciliation (the stale-hold sweep), never thrown at a client mid-stream.
    const finish = async (sent: number): Promise<Cost | null> => {
      try {
        const cost = await hold.finish(sent);
        ctx.meter.add(cost);
        return cost;
      } catch (err) {
        ctx.log.error(
          { err, sent, datasetId: dataset.id },
          "could not settle an export; its credit hold stays open",
        );
        return null;
      }
    };
    return {
      dataset: { id: dataset.id, slug: dataset.slug, columns: target.columns },
      total,
      reserved: { records: total, credits: Number(hold.credits), balance: Number(hold.balance) },
      batches,
      bytes,
      finish,
    };
  }

  /** The access decision for this caller and dataset row: free or metered, else its error. */
  private async open(caller: Caller, dataset: Dataset): Promise<Opened> {
    const who = authorize(caller, ["records:read"]);
    const reader: Reader = {
      accountId: who.accountId,
      admin: who.role === "ADMIN",
      keyDatasetIds: who.kind === "apiKey" ? who.datasetIds : undefined,
    };
    const entitled =
      needsEntitlement(reader, dataset) && (await this.ledger.isEntitled(who.accountId, dataset.id));
    const decision = decideAccess(reader, dataset, entitled);
    if (decision.kind === "denied") throw deniedError(decision);
    return { who, decision };
  }

  private metered(
    who: AuthenticatedCaller,
    decision: Granted,
    dataset: Dataset,
    operation: string,
    ctx: ReadContext,
  ): Metered {
    return {
      accountId: who.accountId,
      apiKeyId: who.kind === "apiKey" ? who.apiKeyId : null,
      dataset: { id: dataset.id, slug: dataset.slug, accountId: dataset.accountId },
      decision,
      operation,
      requestId: ctx.requestId,
    };
  }

  /** A read through the metering path, its cost added to the request's meter. */
  private async charged<T>(
    { who, decision }: Opened,
    dataset: Dataset,
    operation: string,
    ctx: ReadContext,
    maxCost: (pricePer100: bigint) => bigint,
    read: () => Promise<{ result: T; records: number; fixed?: boolean }>,
  ): Promise<T> {
    const op = this.metered(who, decision, dataset, operation, ctx);
    const { result, cost } = await this.metering.read(op, maxCost, read);
    ctx.meter.add(cost);
    return result;
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
