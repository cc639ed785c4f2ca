// Keyset pagination over Prisma models, by their UUIDv7 id (time-ordered, so id order is creation
// order) or by one sort field then the id. Page 10,000 costs what page 1 costs: every read is an
// index range scan from the cursor, never an OFFSET.
import { badInput } from "../errors.js";
import { decodeCursor, encodeCursor, type Page, type PageFlag, type PageRequest } from "../pagination.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

type Where = Record<string, unknown>;
type Direction = "asc" | "desc";

/** An extra sort field before the id. Its values must be non-null. */
export interface SortField {
  field: string;
  direction: Direction;
  kind: "string" | "date" | "bigint" | "number";
}

/** The two reads a keyset page needs, bound by the caller to one model and one filter. */
export interface KeysetSource<T> {
  find(query: { where: Where; orderBy: Record<string, Direction>[]; take: number }): Promise<T[]>;
  /** Ordered towards the cursor, so PostgreSQL walks the index from it instead of scanning. */
  exists(where: Where, orderBy: Record<string, Direction>[]): Promise<boolean>;
}

type CursorValue = string | number;

function toCursorValue(value: unknown, kind: SortField["kind"]): CursorValue {
  if (kind === "date") return (value as Date).toISOString();
  if (kind === "bigint") return String(value);
  return value as CursorValue;
}

function fromCursorValue(value: unknown, kind: SortField["kind"], argument: string): unknown {
  const invalid = () => badInput("Invalid cursor", { argument });
  if (kind === "number") {
    if (typeof value !== "number") throw invalid();
    return value;
  }
  if (typeof value !== "string") throw invalid();
  if (kind === "date") {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) throw invalid();
    return date;
  }
  if (kind === "bigint") {
    if (!/^-?\d{1,20}$/.test(value)) throw invalid();
    return BigInt(value);
  }
  return value;
}

/** Rows strictly after (id, value) in `direction`; `inclusive` for the "anything on this side" probe. */
function beyond(
  sort: SortField | null,
  value: unknown,
  id: string,
  direction: Direction,
  inclusive: boolean,
): Where {
  const op = direction === "asc" ? "gt" : "lt";
  const idOp = inclusive ? `${op}e` : op;
  if (!sort) return { id: { [idOp]: id } };
  return { OR: [{ [sort.field]: { [op]: value } }, { [sort.field]: value, id: { [idOp]: id } }] };
}

const flip = (d: Direction): Direction => (d === "asc" ? "desc" : "asc");

export async function pageByKeyset<T extends { id: string }>(
  request: PageRequest,
  sort: SortField | null,
  source: KeysetSource<T>,
): Promise<Page<T>> {
  const forward = request.direction === "forward";
  const anchor = forward ? request.after : request.before;
  const argument = forward ? "after" : "before";
  const base = sort?.direction ?? "asc";
  const reading = forward ? base : flip(base);

  let anchorKey: { value: unknown; id: string } | null = null;
  if (anchor !== null) {
    const decoded = decodeCursor(anchor, sort ? 2 : 1, argument);
    const id = decoded.at(-1);
    if (typeof id !== "string" || !UUID.test(id)) throw badInput("Invalid cursor", { argument });
    anchorKey = { value: sort ? fromCursorValue(decoded[0], sort.kind, argument) : null, id };
  }

  const order = (d: Direction) => [...(sort ? [{ [sort.field]: d }] : []), { id: d }];
  const orderBy = order(reading);
  const rows = await source.find({
    where: anchorKey ? beyond(sort, anchorKey.value, anchorKey.id, reading, false) : {},
    orderBy,
    take: request.size + 1,
  });
  // Whether anything lies on the other side of the cursor: one indexed probe, not a count, run
  // only when asked for (PageFlag).
  const behind = anchorKey;
  const beyondAnchor: PageFlag = behind
    ? () => source.exists(beyond(sort, behind.value, behind.id, flip(reading), true), order(flip(reading)))
    : false;

  const more = rows.length > request.size;
  const items = rows.slice(0, request.size);
  if (!forward) items.reverse();
  const cursorOf = (item: T) =>
    encodeCursor(
      sort ? [toCursorValue((item as Record<string, unknown>)[sort.field], sort.kind), item.id] : [item.id],
    );
  return {
    items,
    cursors: items.map(cursorOf),
    hasNextPage: forward ? more : beyondAnchor,
    hasPreviousPage: forward ? beyondAnchor : more,
  };
}
