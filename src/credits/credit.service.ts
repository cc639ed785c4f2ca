// Credits as callers see them: the ledger connection, admin top-ups, purchases and usage.
// The money rules themselves live in ledger.ts.
import type { ClickHouse } from "../db/clickhouse.js";
import { ModelReader } from "../db/model-reader.js";
import { AppError } from "../errors.js";
import type { Account, CreditTransaction, PrismaClient } from "../generated/prisma/client.js";
import { authorize, checkKeyDatasets } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import { readScope } from "../identity/read-scope.js";
import type { PageLimits } from "../pagination.js";
import { Ledger, type PurchaseResult, type TopUpResult } from "./ledger.js";
import { noBalanceWatch, type BalanceWatch } from "./low-credit.js";
import type { UsageRecorder } from "./usage-recorder.js";
import {
  usageLogPage,
  usageReport,
  type UsageGroupBy,
  type UsageLogFilter,
  type UsageLogKey,
  type UsageLogLine,
  type UsageReportRow,
} from "./usage.js";
import { decodeCursor, encodeCursor, pageRequest, type Page, type PageArgs } from "../pagination.js";

function decodeLogCursor(cursor: string): UsageLogKey {
  const key = decodeCursor(cursor, 5, "after");
  const [seconds, ...rest] = key;
  if (
    typeof seconds !== "number" ||
    !Number.isSafeInteger(seconds) ||
    rest.some((v) => typeof v !== "string")
  ) {
    throw new AppError("BAD_USER_INPUT", "Invalid cursor", { argument: "after" });
  }
  return [seconds, ...(rest as [string, string, string, string])];
}

export class CreditService {
  readonly transactions: ModelReader<CreditTransaction>;
  readonly ledger: Ledger;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly limits: PageLimits,
    private readonly recorder: UsageRecorder,
    private readonly watch: BalanceWatch = noBalanceWatch,
  ) {
    this.transactions = new ModelReader(prisma.creditTransaction, "creditTransaction", limits);
    this.ledger = new Ledger(prisma, undefined, watch);
  }

  /**
   * Sets (or with null removes) the balance below which the caller's account is sent credits.low,
   * once per crossing. A new threshold starts a new watch: the next debit below it is told.
   */
  async setLowCreditThreshold(caller: Caller, threshold: number | null): Promise<Account> {
    const who = authorize(caller, ["account:write"]);
    if (threshold !== null && (!Number.isSafeInteger(threshold) || threshold < 0)) {
      throw new AppError("BAD_USER_INPUT", "threshold must be a whole number of credits >= 0", {
        argument: "threshold",
      });
    }
    const account = await this.prisma.account.update({
      where: { id: who.accountId },
      data: { lowCreditThreshold: threshold === null ? null : BigInt(threshold), lowCreditNotified: false },
    });
    return account;
  }

  /** Admin: add credits to an account; a retry with the same idempotency key applies once. */
  async topUp(
    caller: Caller,
    accountId: string,
    amount: number,
    idempotencyKey: string,
  ): Promise<TopUpResult> {
    authorize(caller, ["ADMIN", "admin"]);
    if (!Number.isSafeInteger(amount) || amount < 1) {
      throw new AppError("BAD_USER_INPUT", "amount must be a whole number of credits >= 1", {
        argument: "amount",
      });
    }
    const account = await this.prisma.account.findUnique({ where: { id: accountId }, select: { id: true } });
    if (!account) throw new AppError("NOT_FOUND", "Account not found");
    return this.ledger.topUp(accountId, BigInt(amount), idempotencyKey, "admin top-up");
  }

  /** Buys access to a PURCHASED dataset the caller can see: entitlement, sale and ledger entry at once. */
  async purchase(caller: Caller, datasetId: string, idempotencyKey?: string | null): Promise<PurchaseResult> {
    const who = authorize(caller, ["account:write"]);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(caller, "dataset")] },
    });
    if (!dataset) throw new AppError("NOT_FOUND", "Dataset not found");
    checkKeyDatasets(who, dataset.id);
    if (dataset.status !== "PUBLISHED")
      throw new AppError("CONFLICT", "Only published datasets can be bought");
    const apiKeyId = who.kind === "apiKey" ? who.apiKeyId : null;
    return this.ledger.purchase(who.accountId, dataset, idempotencyKey ?? undefined, apiKeyId);
  }

  async balance(accountId: string): Promise<bigint> {
    return this.ledger.balance(accountId);
  }

  /** The caller's own usage (admins: any account's), from the usage events in ClickHouse. */
  async usage(
    caller: Caller,
    range: { from: Date; to: Date; groupBy: UsageGroupBy },
    accountId?: string | null,
  ): Promise<UsageReportRow[]> {
    const who = authorize(caller, ["account:read"]);
    const target = accountId ?? who.accountId;
    if (target !== who.accountId && who.role !== "ADMIN") {
      throw new AppError("NOT_FOUND", "Account not found");
    }
    // Events this process still holds are written first; other processes' within a second.
    await this.recorder.flush();
    return usageReport(this.clickhouse, target, range);
  }

  /**
   * The caller's per-request usage log (admins: any account's), newest first: operation, dataset,
   * records, credits, duration and key of every billed read. Pages forward only.
   */
  async usageLog(
    caller: Caller,
    args: PageArgs,
    filter: UsageLogFilter,
    accountId?: string | null,
  ): Promise<Page<UsageLogLine>> {
    const who = authorize(caller, ["account:read"]);
    const target = accountId ?? who.accountId;
    if (target !== who.accountId && who.role !== "ADMIN") {
      throw new AppError("NOT_FOUND", "Account not found");
    }
    const request = pageRequest(args, this.limits);
    if (request.direction !== "forward") {
      throw new AppError("BAD_USER_INPUT", "usageLog pages forward only: use first and after", {
        argument: "last",
      });
    }
    const after = request.after === null ? null : decodeLogCursor(request.after);
    await this.recorder.flush();
    const page = await usageLogPage(this.clickhouse, target, filter, request.size, after);
    return {
      items: page.lines,
      cursors: page.keys.map((key) => encodeCursor(key)),
      hasNextPage: page.hasNextPage,
      hasPreviousPage: after !== null,
    };
  }
}
