// The reads every Relay-exposed model needs: a keyset page, and rows by id for DataLoader.
// Bound to one Prisma model; every read is filtered by the caller's read scope.
import type { Caller } from "../identity/caller.js";
import { readScope, type ScopedModel } from "../identity/read-scope.js";
import { pageByKeyset, type SortField } from "./keyset.js";
import { pageRequest, type Page, type PageArgs, type PageLimits } from "../pagination.js";

type Where = Record<string, unknown>;

/** The slice of a Prisma model delegate this module uses. */
export interface ModelDelegate<Row> {
  findMany(args: {
    where?: Where;
    orderBy?: Record<string, "asc" | "desc">[];
    take?: number;
  }): Promise<Row[]>;
  findFirst(args: {
    where?: Where;
    orderBy?: Record<string, "asc" | "desc">[];
    select: { id: true };
  }): Promise<{ id: string } | null>;
}

export class ModelReader<Row extends { id: string }> {
  constructor(
    private readonly model: ModelDelegate<Row>,
    private readonly scopedAs: ScopedModel,
    private readonly limits: PageLimits,
  ) {}

  /** A page of the rows the caller may read, further narrowed by `filter`, by id or `sort` then id. */
  page(
    caller: Caller,
    args: PageArgs,
    filter: Where = {},
    sort: SortField | null = null,
  ): Promise<Page<Row>> {
    const scope = readScope(caller, this.scopedAs);
    const and = (range: Where): Where => ({ AND: [scope, filter, range] });
    return pageByKeyset(pageRequest(args, this.limits), sort, {
      find: ({ where, orderBy, take }) => this.model.findMany({ where: and(where), orderBy, take }),
      exists: async (where, orderBy) =>
        (await this.model.findFirst({ where: and(where), orderBy, select: { id: true } })) !== null,
    });
  }

  /** Rows in the order of `ids`, null where a row is missing or outside the scope. */
  async byIds(caller: Caller, ids: readonly string[]): Promise<(Row | null)[]> {
    const scope = readScope(caller, this.scopedAs);
    const rows = await this.model.findMany({ where: { AND: [scope, { id: { in: [...ids] } }] } });
    const byId = new Map(rows.map((row) => [row.id, row]));
    return ids.map((id) => byId.get(id) ?? null);
  }
}
