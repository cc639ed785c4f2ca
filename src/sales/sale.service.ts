import { ModelReader } from "../db/model-reader.js";
import { AppError } from "../errors.js";
import { Prisma, type PrismaClient, type Sale } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageLimits } from "../pagination.js";

export type SalesGroupBy = "DAY" | "DATASET" | "CATEGORY";

export interface SalesStatRow {
  group: string;
  sales: number;
  credits: number;
  records: number;
}

// Fixed SQL per grouping, chosen by enum: only values travel as parameters.
const GROUP_SQL: Record<SalesGroupBy, Prisma.Sql> = {
  DAY: Prisma.sql`to_char(s.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')`,
  DATASET: Prisma.sql`d.slug`,
  CATEGORY: Prisma.sql`d.category`,
};

export class SaleService {
  readonly sales: ModelReader<Sale>;

  constructor(
    private readonly prisma: PrismaClient,
    limits: PageLimits,
  ) {
    this.sales = new ModelReader(prisma.sale, "sale", limits);
  }

  /** Counts and credit totals of the caller's sales (admins: everyone's) in [from, to). */
  async stats(
    caller: Caller,
    range: { from: Date; to: Date; groupBy: SalesGroupBy },
  ): Promise<SalesStatRow[]> {
    const who = authorize(caller, ["PUBLISHER", "account:read"]);
    if (!(range.from < range.to))
      throw new AppError("BAD_USER_INPUT", "from must be before to", { argument: "from" });
    const seller =
      who.role === "ADMIN" ? Prisma.empty : Prisma.sql`AND s.seller_account_id = ${who.accountId}::uuid`;
    const group = GROUP_SQL[range.groupBy];
    const rows = await this.prisma.$queryRaw<
      { group: string; sales: bigint; credits: bigint; records: bigint }[]
    >`
      SELECT ${group} AS "group", count(*) AS sales, coalesce(sum(s.credits), 0)::bigint AS credits,
             coalesce(sum(s.records), 0)::bigint AS records
      FROM sales s JOIN datasets d ON d.id = s.dataset_id
      WHERE s.created_at >= ${range.from} AND s.created_at < ${range.to} ${seller}
      GROUP BY 1 ORDER BY 1`;
    return rows.map((r) => ({
      group: r.group,
      sales: Number(r.sales),
      credits: Number(r.credits),
      records: Number(r.records),
    }));
  }
}
