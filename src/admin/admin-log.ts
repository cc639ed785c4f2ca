// The admin log: every change an admin makes to money, users or plans, written in the same
// transaction as the change, so the log never claims what did not happen nor misses what did.
import type { Prisma } from "../generated/prisma/client.js";
import type { AuthenticatedCaller } from "../identity/caller.js";

type Db = Prisma.TransactionClient;

/** What was changed: a model name and its raw id. */
export interface AdminTarget {
  type: string;
  id: string;
}

// The system caller (CLI, jobs) acts with the all-zero user id, which is no user.
const SYSTEM_USER = "00000000-0000-0000-0000-000000000000";

export async function logAdminAction(
  db: Db,
  actor: AuthenticatedCaller,
  action: string,
  target: AdminTarget,
  details: Record<string, string | number | boolean | null> = {},
): Promise<void> {
  await db.adminLogEntry.create({
    data: {
      actorId: actor.userId === SYSTEM_USER ? null : actor.userId,
      action,
      targetType: target.type,
      targetId: target.id,
      details,
    },
  });
}
