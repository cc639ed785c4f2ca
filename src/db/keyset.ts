// Keyset pagination over Prisma models ordered by their UUIDv7 id (time-ordered, so id order is
// creation order). Page 10,000 costs what page 1 costs: every read is an index range scan.
import { badInput } from "../errors.js";
import { decodeCursor, encodeCursor, type Page, type PageRequest } from "../pagination.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface IdRange {
  id?: { gt?: string; lt?: string; gte?: string; lte?: string };
}

/** The two reads a keyset page needs, bound by the caller to one model and one filter. */
export interface IdKeysetSource<T> {
  find(query: { where: IdRange; orderBy: { id: "asc" | "desc" }; take: number }): Promise<T[]>;
  exists(where: IdRange): Promise<boolean>;
}

function cursorId(cursor: string, argument: string): string {
  const [id] = decodeCursor(cursor, 1, argument);
  if (typeof id !== "string" || !UUID.test(id)) throw badInput("Invalid cursor", { argument });
  return id;
}

export async function pageById<T extends { id: string }>(
  request: PageRequest,
  source: IdKeysetSource<T>,
): Promise<Page<T>> {
  const forward = request.direction === "forward";
  const anchor = forward ? request.after : request.before;
  const anchorId = anchor === null ? null : cursorId(anchor, forward ? "after" : "before");

  const [rows, beyondAnchor] = await Promise.all([
    source.find({
      where: anchorId === null ? {} : { id: forward ? { gt: anchorId } : { lt: anchorId } },
      orderBy: { id: forward ? "asc" : "desc" },
      take: request.size + 1,
    }),
    // Whether anything lies on the other side of the cursor: one indexed probe, not a count.
    anchorId === null
      ? Promise.resolve(false)
      : source.exists({ id: forward ? { lte: anchorId } : { gte: anchorId } }),
  ]);

  const more = rows.length > request.size;
  const items = rows.slice(0, request.size);
  if (!forward) items.reverse();
  return {
    items,
    cursors: items.map((item) => encodeCursor([item.id])),
    hasNextPage: forward ? more : beyondAnchor,
    hasPreviousPage: forward ? beyondAnchor : more,
  };
}
