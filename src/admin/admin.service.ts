// Platform administration: the admin log (written by every admin change, see admin-log.ts).
import { ModelReader } from "../db/model-reader.js";
import type { AdminLogEntry, PrismaClient } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageArgs, PageLimits } from "../pagination.js";

export class AdminService {
  readonly log: ModelReader<AdminLogEntry>;

  constructor(
    private readonly prisma: PrismaClient,
    limits: PageLimits,
  ) {
    this.log = new ModelReader(prisma.adminLogEntry, "adminLogEntry", limits);
  }

  /** The admin log, oldest first, optionally of one action. */
  logPage(caller: Caller, args: PageArgs, action: string | null) {
    authorize(caller, ["ADMIN", "admin"]);
    return this.log.page(caller, args, action ? { action } : {});
  }
}
