import {
  Arg,
  Args,
  Authorized,
  Ctx,
  FieldResolver,
  ID,
  Int,
  Mutation,
  Query,
  Resolver,
  Root,
} from "type-graphql";
import type { Context } from "../graphql/context.js";
import { ConnectionArgs, decodeGlobalId, toConnection } from "../graphql/relay.js";
import { SafeInt } from "../graphql/scalars.js";
import { Account } from "../identity/account.types.js";
import {
  CreditTransaction,
  CreditTransactionConnection,
  TopUpPayload,
  UsageGroup,
  UsageLogEntry,
  UsageLogEntryConnection,
  UsageRow,
} from "./credit.types.js";
import { Dataset } from "../catalog/catalog.types.js";
import { ApiKey } from "../identity/api-key.types.js";
import type { UsageLogLine } from "./usage.js";

@Resolver(() => CreditTransaction)
export class CreditResolver {
  @Authorized("account:read")
  @Query(() => CreditTransactionConnection, {
    description: "The ledger: every top-up, reservation, release, charge and purchase, oldest first.",
  })
  async creditTransactions(@Args(() => ConnectionArgs) args: ConnectionArgs, @Ctx() ctx: Context) {
    const page = await ctx.services.credits.transactions.page(ctx.caller, args);
    return toConnection(page, CreditTransaction.from);
  }

  @FieldResolver(() => Account, { nullable: true })
  async account(@Root() transaction: CreditTransaction, @Ctx() ctx: Context) {
    return ctx.loaders.node("Account", transaction.accountId);
  }

  @Authorized("account:write")
  @Mutation(() => Account, {
    description:
      "The caller's account: below this balance, after a debit, its webhooks get credits.low (once per crossing). null turns it off.",
  })
  async setLowCreditThreshold(
    @Arg("threshold", () => SafeInt, { nullable: true }) threshold: number | null,
    @Ctx() ctx: Context,
  ) {
    return Account.from(await ctx.services.credits.setLowCreditThreshold(ctx.caller, threshold));
  }

  @Authorized("ADMIN", "admin")
  @Mutation(() => TopUpPayload, {
    description: "Admin: add credits. A retry with the same idempotencyKey applies once.",
  })
  async topUpCredits(
    @Arg("accountId", () => ID) accountId: string,
    @Arg("amount", () => Int) amount: number,
    @Arg("idempotencyKey", () => String) idempotencyKey: string,
    @Ctx() ctx: Context,
  ) {
    const id = decodeGlobalId(accountId, ["Account"]).id;
    const { transaction, replayed } = await ctx.services.credits.topUp(
      ctx.caller,
      id,
      amount,
      idempotencyKey,
    );
    return { transaction: CreditTransaction.from(transaction), replayed };
  }

  @Authorized("account:read")
  @Query(() => UsageLogEntryConnection, {
    description: "Your usage, request by request, newest first (pages forward: first/after).",
  })
  async usageLog(
    @Args(() => ConnectionArgs) args: ConnectionArgs,
    @Arg("apiKeyId", () => ID, { nullable: true, description: "Only this key's requests." })
    apiKeyId: string | null,
    @Arg("datasetId", () => ID, { nullable: true, description: "Only this dataset." })
    datasetId: string | null,
    @Arg("accountId", () => ID, { nullable: true, description: "Admins: another account." })
    accountId: string | null,
    @Ctx() ctx: Context,
  ) {
    const filter = {
      apiKeyId: apiKeyId ? decodeGlobalId(apiKeyId, ["ApiKey"]).id : null,
      datasetId: datasetId ? decodeGlobalId(datasetId, ["Dataset"]).id : null,
    };
    const target = accountId ? decodeGlobalId(accountId, ["Account"]).id : null;
    const page = await ctx.services.credits.usageLog(ctx.caller, args, filter, target);
    return toConnection(page, (line: UsageLogLine) => Object.assign(new UsageLogEntry(), line));
  }

  @Authorized("account:read")
  @Query(() => [UsageRow], {
    description: "Your usage between from (inclusive) and to (exclusive), grouped.",
  })
  async usage(
    @Arg("from", () => Date) from: Date,
    @Arg("to", () => Date) to: Date,
    @Arg("groupBy", () => UsageGroup) groupBy: UsageGroup,
    @Arg("accountId", () => ID, { nullable: true, description: "Admins: another account." })
    accountId: string | null,
    @Ctx() ctx: Context,
  ) {
    const target = accountId ? decodeGlobalId(accountId, ["Account"]).id : null;
    return ctx.services.credits.usage(ctx.caller, { from, to, groupBy }, target);
  }
}

@Resolver(() => UsageLogEntry)
export class UsageLogEntryResolver {
  @FieldResolver(() => Dataset, { nullable: true })
  async dataset(@Root() line: UsageLogEntry, @Ctx() ctx: Context) {
    return ctx.loaders.node("Dataset", line.datasetId);
  }

  @FieldResolver(() => ApiKey, { nullable: true, description: "null for dashboard sessions." })
  async apiKey(@Root() line: UsageLogEntry, @Ctx() ctx: Context) {
    return line.apiKeyId ? ctx.loaders.node("ApiKey", line.apiKeyId) : null;
  }
}
