// The catalogue: publishers define datasets (metadata, column schema, price) and move them
// through DRAFT → PUBLISHED ⇄ UNPUBLISHED → ARCHIVED; buyers browse what is published.
import type { Config } from "../config.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { ModelReader } from "../db/model-reader.js";
import { translatePrismaError } from "../db/prisma-errors.js";
import { uuidv7 } from "../db/uuid.js";
import { AppError } from "../errors.js";
import type {
  Dataset,
  DatasetAccess,
  DatasetStatus,
  Prisma,
  PrismaClient,
  PurchaseTerm,
} from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { Page, PageArgs, PageLimits } from "../pagination.js";
import { timeStorageFor, validateColumns, withTimeStorage, type Column } from "./columns.js";
import { addDatasetColumns, createDatasetTable, dropDatasetTable, tableNameFor } from "./dataset-table.js";

const SLUG = /^[a-z][a-z0-9_]{2,63}$/;

export interface DatasetInput {
  slug: string;
  title: string;
  description?: string | null;
  category: string;
  tags?: string[] | null;
  columns: Column[];
  keyColumns: string[];
  access: DatasetAccess;
  pricePer100Records?: number | null;
  purchasePrice?: number | null;
  purchaseTerm?: PurchaseTerm | null;
}

export type DatasetUpdate = Partial<Omit<DatasetInput, "slug" | "columns" | "keyColumns">>;

export type DatasetSort = "CREATED" | "TITLE" | "UPDATED" | "ROW_COUNT";

export interface CatalogQuery {
  search?: string | null;
  category?: string | null;
  publisherId?: string | null;
  sort?: DatasetSort | null;
  /** Publishers may list their own datasets in any status. */
  status?: DatasetStatus | null;
}

const SORTS = {
  CREATED: null,
  TITLE: { field: "title", direction: "asc", kind: "string" },
  UPDATED: { field: "updatedAt", direction: "desc", kind: "date" },
  ROW_COUNT: { field: "rowCount", direction: "desc", kind: "bigint" },
} as const;

export class CatalogService {
  readonly datasets: ModelReader<Dataset>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly config: Pick<Config, "CLICKHOUSE_DATABASE">,
    limits: PageLimits,
  ) {
    this.datasets = new ModelReader(prisma.dataset, "dataset", limits);
  }

  /** The catalogue as the caller may see it, searched, filtered and sorted. */
  list(caller: Caller, args: PageArgs, query: CatalogQuery = {}): Promise<Page<Dataset>> {
    const filter: Prisma.DatasetWhereInput[] = [];
    const term = query.search?.trim();
    if (term) {
      filter.push({
        OR: [
          { title: { contains: term, mode: "insensitive" } },
          { description: { contains: term, mode: "insensitive" } },
          { tags: { has: term.toLowerCase() } },
        ],
      });
    }
    if (query.category) filter.push({ category: query.category });
    if (query.publisherId) filter.push({ accountId: query.publisherId });
    if (query.status) filter.push({ status: query.status });
    return this.datasets.page(caller, args, { AND: filter }, SORTS[query.sort ?? "CREATED"] ?? null);
  }

  /**
   * Publishers' public profiles (name and slug only), for anyone who can see their datasets.
   * Never the account itself: that holds balances and settings.
   */
  async publishers(accountIds: readonly string[]): Promise<({ name: string; slug: string } | null)[]> {
    const rows = await this.prisma.account.findMany({
      where: { id: { in: [...accountIds] } },
      select: { id: true, name: true, slug: true },
    });
    const byId = new Map(rows.map((r) => [r.id, { name: r.name, slug: r.slug }]));
    return accountIds.map((id) => byId.get(id) ?? null);
  }

  async bySlug(caller: Caller, slug: string): Promise<Dataset | null> {
    const row = await this.prisma.dataset.findUnique({ where: { slug }, select: { id: true } });
    if (!row) return null;
    const [dataset] = await this.datasets.byIds(caller, [row.id]);
    return dataset ?? null;
  }

  /** Published categories with how many published datasets each has. */
  async categories(): Promise<{ name: string; datasetCount: number }[]> {
    const groups = await this.prisma.dataset.groupBy({
      by: ["category"],
      where: { status: "PUBLISHED" },
      _count: { _all: true },
      orderBy: { category: "asc" },
    });
    return groups.map((g) => ({ name: g.category, datasetCount: g._count._all }));
  }

  async create(caller: Caller, input: DatasetInput): Promise<Dataset> {
    const who = authorize(caller, ["PUBLISHER", "datasets:write"]);
    if (!SLUG.test(input.slug)) {
      throw new AppError(
        "BAD_USER_INPUT",
        "Slugs are 3-64 lower-case letters, digits and _, starting with a letter",
        {
          argument: "slug",
        },
      );
    }
    validateColumns(input.columns, input.keyColumns);
    const columns = await this.newColumns(input.columns);
    const metadata = this.metadata(input);
    const id = uuidv7();
    const tableName = tableNameFor(id);
    // The table first: an orphan empty table after a failed insert is harmless and cleaned up;
    // a catalogue row pointing at no table would not be.
    await createDatasetTable(this.clickhouse, this.config.CLICKHOUSE_DATABASE, tableName, columns);
    try {
      return await this.prisma.dataset.create({
        data: {
          id,
          accountId: who.accountId,
          slug: input.slug,
          ...metadata,
          columns: columns as unknown as Prisma.InputJsonValue,
          keyColumns: input.keyColumns,
          tableName,
        },
      });
    } catch (error) {
      // Best effort: the slug conflict (or other failure) is what the caller needs to hear about.
      await dropDatasetTable(this.clickhouse, this.config.CLICKHOUSE_DATABASE, tableName).catch(
        () => undefined,
      );
      translatePrismaError(error, "slug");
    }
  }

  async update(caller: Caller, id: string, input: DatasetUpdate): Promise<Dataset> {
    const dataset = await this.own(caller, id);
    const merged = { ...datasetAsInput(dataset), ...withoutUndefined(input) };
    return this.prisma.dataset.update({ where: { id: dataset.id }, data: this.metadata(merged) });
  }

  /**
   * The only schema change allowed: new columns, which must be nullable (existing rows have no
   * value for them). Renaming, retyping or dropping a column would change what buyers already
   * rely on; publish a new dataset for that.
   */
  async addColumns(caller: Caller, id: string, columns: Column[]): Promise<Dataset> {
    const dataset = await this.own(caller, id);
    const existing = dataset.columns as unknown as Column[];
    const clash = columns.filter((c) => existing.some((e) => e.name === c.name));
    if (clash.length) {
      throw new AppError(
        "BAD_USER_INPUT",
        `Columns already exist: ${clash.map((c) => c.name).join(", ")}. Changing a column is not supported; add a new one`,
        {
          argument: "columns",
        },
      );
    }
    const required = columns.filter((c) => !c.nullable);
    if (required.length) {
      throw new AppError(
        "BAD_USER_INPUT",
        `New columns must be nullable: ${required.map((c) => c.name).join(", ")}`,
        {
          argument: "columns",
        },
      );
    }
    validateColumns([...existing, ...columns], dataset.keyColumns);
    const added = await this.newColumns(columns);
    const all = [...existing, ...added];
    await addDatasetColumns(this.clickhouse, this.config.CLICKHOUSE_DATABASE, dataset.tableName, added);
    return this.prisma.dataset.update({
      where: { id: dataset.id },
      data: { columns: all as unknown as Prisma.InputJsonValue },
    });
  }

  /**
   * Columns about to be made, with how this engine stores their dates (columns.ts TimeStorage).
   * The choice is kept with the schema: columns made earlier keep theirs.
   */
  private async newColumns(columns: readonly Column[]): Promise<Column[]> {
    return withTimeStorage(columns, timeStorageFor(await this.clickhouse.version()));
  }

  async setStatus(
    caller: Caller,
    id: string,
    status: "PUBLISHED" | "UNPUBLISHED" | "ARCHIVED",
  ): Promise<Dataset> {
    const dataset = await this.own(caller, id);
    if (dataset.status === "ARCHIVED")
      throw new AppError("CONFLICT", "Archived datasets cannot change status");
    if (status === "UNPUBLISHED" && dataset.status !== "PUBLISHED") {
      throw new AppError("CONFLICT", "Only a published dataset can be unpublished");
    }
    return this.prisma.dataset.update({ where: { id: dataset.id }, data: { status } });
  }

  /** The dataset if the caller publishes it (or is an admin); NOT_FOUND otherwise. */
  async own(caller: Caller, id: string): Promise<Dataset> {
    const who = authorize(caller, ["PUBLISHER", "datasets:write"]);
    const dataset = await this.prisma.dataset.findUnique({ where: { id } });
    if (!dataset || (who.role !== "ADMIN" && dataset.accountId !== who.accountId)) {
      throw new AppError("NOT_FOUND", "Dataset not found");
    }
    return dataset;
  }

  private metadata(input: Omit<DatasetInput, "slug" | "columns" | "keyColumns">) {
    const title = input.title.trim();
    const category = input.category.trim().toLowerCase();
    const problems: string[] = [];
    if (title.length < 1 || title.length > 200) problems.push("title must be 1-200 characters");
    if (!/^[a-z0-9][a-z0-9 _-]{0,63}$/.test(category))
      problems.push("category must be 1-64 letters, digits, space, _ or -");
    const tags = [...new Set((input.tags ?? []).map((t) => t.trim().toLowerCase()).filter(Boolean))];
    if (tags.length > 20 || tags.some((t) => t.length > 40))
      problems.push("at most 20 tags of 40 characters");
    const price = input.pricePer100Records ?? 0;
    if (!Number.isInteger(price) || price < 0)
      problems.push("pricePer100Records must be a whole number >= 0");
    if (input.access === "METERED" && price < 1)
      problems.push("METERED datasets need pricePer100Records >= 1");
    if (input.access === "PURCHASED") {
      if (!Number.isInteger(input.purchasePrice ?? 0) || (input.purchasePrice ?? 0) < 1) {
        problems.push("PURCHASED datasets need a purchasePrice >= 1");
      }
      if (!input.purchaseTerm) problems.push("PURCHASED datasets need a purchaseTerm");
    }
    if (problems.length)
      throw new AppError("BAD_USER_INPUT", `Invalid dataset: ${problems.join("; ")}`, { problems });
    return {
      title,
      description: (input.description ?? "").trim(),
      category,
      tags,
      access: input.access,
      pricePer100Records: BigInt(input.access === "METERED" ? price : 0),
      purchasePrice: input.access === "PURCHASED" ? BigInt(input.purchasePrice!) : null,
      purchaseTerm: input.access === "PURCHASED" ? input.purchaseTerm! : null,
    };
  }
}

function datasetAsInput(d: Dataset): Omit<DatasetInput, "slug" | "columns" | "keyColumns"> {
  return {
    title: d.title,
    description: d.description,
    category: d.category,
    tags: d.tags,
    access: d.access,
    pricePer100Records: Number(d.pricePer100Records),
    purchasePrice: d.purchasePrice === null ? null : Number(d.purchasePrice),
    purchaseTerm: d.purchaseTerm,
  };
}

function withoutUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
