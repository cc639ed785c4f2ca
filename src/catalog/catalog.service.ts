import type { Dataset, PrismaClient } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class CatalogService {
  readonly datasets: ModelReader<Dataset>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.datasets = new ModelReader(prisma.dataset, "dataset", limits);
  }
}
