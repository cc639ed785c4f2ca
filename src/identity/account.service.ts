import type { Account, PrismaClient } from "../generated/prisma/client.js";
import { ModelReader } from "../db/model-reader.js";
import type { PageLimits } from "../pagination.js";

export class AccountService {
  readonly accounts: ModelReader<Account>;

  constructor(prisma: PrismaClient, limits: PageLimits) {
    this.accounts = new ModelReader(prisma.account, "account", limits);
  }
}
