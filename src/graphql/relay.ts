// Relay in the schema: global ids, the Node interface, connection and edge types.
// type-graphql reads decorator metadata; every module declaring GraphQL types imports this one.
import "reflect-metadata";
import { fromGlobalId, toGlobalId } from "graphql-relay";
import { ArgsType, Field, ID, Int, InterfaceType, ObjectType, type ClassType } from "type-graphql";
import { badInput } from "../errors.js";
import { pageFlag, type Page, type PageArgs, type PageFlag } from "../pagination.js";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeGlobalId = (type: string, id: string): string => toGlobalId(type, id);

/** Decodes a global id; a malformed one, or one of another type, is the client's mistake. */
export function decodeGlobalId(globalId: string, expectedTypes?: readonly string[]): GlobalId {
  let decoded: { type: string; id: string };
  try {
    decoded = fromGlobalId(globalId);
  } catch {
    throw badInput("Malformed id", { argument: "id" });
  }
  const { type, id } = decoded;
  if (!/^[A-Z][A-Za-z]*$/.test(type) || !UUID.test(id)) {
    throw badInput("Malformed id", { argument: "id" });
  }
  if (expectedTypes && !expectedTypes.includes(type)) {
    throw badInput(`Expected the id of a ${expectedTypes.join(" or ")}`, { argument: "id" });
  }
  return { type, id };
}

export interface GlobalId {
  type: string;
  id: string;
}

/** Relay's Node: every object with a global id can be fetched again through `node(id:)`. */
@InterfaceType({ description: "An object with a globally unique, opaque id." })
export abstract class Node {
  @Field(() => ID, { description: "Opaque global id; pass it to `node(id:)` to fetch again." })
  id!: string;
}

@ObjectType({ description: "Where a page sits in its connection (Relay cursor connections spec)." })
export class PageInfo {
  constructor(
    // A flag may be a probe (pagination.ts PageFlag): run only when a query selects its field.
    private readonly next: PageFlag,
    private readonly previous: PageFlag,
    startCursor: string | null,
    endCursor: string | null,
  ) {
    this.startCursor = startCursor;
    this.endCursor = endCursor;
  }

  @Field(() => Boolean)
  get hasNextPage(): Promise<boolean> {
    return pageFlag(this.next);
  }

  @Field(() => Boolean)
  get hasPreviousPage(): Promise<boolean> {
    return pageFlag(this.previous);
  }

  @Field(() => String, { nullable: true })
  startCursor: string | null;

  @Field(() => String, { nullable: true })
  endCursor: string | null;
}

@ArgsType()
export class ConnectionArgs implements PageArgs {
  @Field(() => Int, { nullable: true, description: "Return at most this many edges, after `after`." })
  first?: number | null;

  @Field(() => String, { nullable: true })
  after?: string | null;

  @Field(() => Int, { nullable: true, description: "Return at most this many edges, before `before`." })
  last?: number | null;

  @Field(() => String, { nullable: true })
  before?: string | null;
}

export interface Edge<T> {
  node: T;
  cursor: string;
}

export interface Connection<T> {
  edges: Edge<T>[];
  pageInfo: PageInfo;
}

/**
 * Declares `<Name>Connection` and `<Name>Edge` for a node type. Use as
 * `@ObjectType() class DatasetConnection extends ConnectionType(Dataset) {}`.
 */
export function ConnectionType<T extends object>(node: ClassType<T>) {
  @ObjectType(`${node.name}Edge`)
  class EdgeType implements Edge<T> {
    @Field(() => node)
    node!: T;

    @Field(() => String, { description: "Opaque; pass it as `after` or `before`." })
    cursor!: string;
  }

  @ObjectType(`${node.name}ConnectionBase`)
  abstract class ConnectionClass implements Connection<T> {
    @Field(() => [EdgeType])
    edges!: EdgeType[];

    @Field(() => PageInfo)
    pageInfo!: PageInfo;
  }
  return ConnectionClass;
}

export function toConnection<Row, T>(page: Page<Row>, toNode: (row: Row) => T): Connection<T> {
  const edges = page.items.map((row, i) => ({ node: toNode(row), cursor: page.cursors[i]! }));
  return {
    edges,
    pageInfo: new PageInfo(
      page.hasNextPage,
      page.hasPreviousPage,
      edges[0]?.cursor ?? null,
      edges.at(-1)?.cursor ?? null,
    ),
  };
}
