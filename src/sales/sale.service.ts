import type { PrismaClient, Sale } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class SaleService {
  readonly sales: ModelReader<Sale>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.sales = new ModelReader(prisma.sale, "sale", limits);
  }
}
