import type { CreditTransaction, PrismaClient } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class CreditService {
  readonly transactions: ModelReader<CreditTransaction>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.transactions = new ModelReader(prisma.creditTransaction, "creditTransaction", limits);
  }
}
