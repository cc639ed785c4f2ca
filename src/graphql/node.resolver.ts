import { Arg, Ctx, ID, Query, Resolver } from "type-graphql";
import { badInput } from "../errors.js";
import type { Context } from "./context.js";
import { isNodeTypeName } from "./loaders.js";
import { Node, decodeGlobalId } from "./relay.js";

const MAX_NODES = 100;

@Resolver()
export class NodeResolver {
  @Query(() => Node, { nullable: true, description: "Fetches any object by its global id." })
  async node(@Arg("id", () => ID) id: string, @Ctx() ctx: Context) {
    return resolveNode(id, ctx);
  }

  @Query(() => [Node], {
    nullable: "items",
    description: `Fetches up to ${MAX_NODES} objects by global id, in the order given; null for ids not found.`,
  })
  async nodes(@Arg("ids", () => [ID]) ids: string[], @Ctx() ctx: Context) {
    if (ids.length > MAX_NODES)
      throw badInput(`At most ${MAX_NODES} ids`, { argument: "ids", max: MAX_NODES });
    return Promise.all(ids.map((id) => resolveNode(id, ctx)));
  }
}

function resolveNode(globalId: string, ctx: Context) {
  const { type, id } = decodeGlobalId(globalId);
  // A well-formed id of an unknown type cannot exist: not found, not a client error.
  if (!isNodeTypeName(type)) return null;
  return ctx.loaders.node(type, id);
}
