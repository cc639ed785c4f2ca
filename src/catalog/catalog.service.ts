import type { Dataset, PrismaClient } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class CatalogService {
  readonly datasets: ModelReader<Dataset>;

  constructor(
    private readonly prisma: PrismaClient,
    limits: PageLimits,
  ) {
    this.datasets = new ModelReader(prisma.dataset, "dataset", limits);
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
}
