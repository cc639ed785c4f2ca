// Input hygiene at the edge, before anything reaches a store: a string with a NUL byte or a lone
// UTF-16 surrogate (PostgreSQL refuses both, 22021 / 22P05) and input nested deeper than
// INPUT_MAX_DEPTH (every recursive input type, RecordFilterInput's and/or/not first) are refused
// as BAD_USER_INPUT. One walk serves REST (query, params, body), GraphQL (variables and the
// document's literals) and WebSocket subscriptions. The walk is iterative: a hostile depth cannot
// overflow the stack that is checking it.
import type { ApolloServerPlugin } from "@apollo/server";
import type { FastifyInstance } from "fastify";
import { GraphQLError, Kind, type ASTNode, type DocumentNode } from "graphql";
import { AppError, ErrorCode } from "../errors.js";

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Why `text` cannot be stored, or null when it can. */
function stringProblem(text: string): string | null {
  if (text.includes("\u0000")) return "contains a NUL byte";
  if (LONE_SURROGATE.test(text)) return "contains a lone UTF-16 surrogate";
  return null;
}

/** The first problem in a decoded JSON-like value (path and reason), or null. */
export function inputProblem(value: unknown, maxDepth: number, root = "input"): string | null {
  const stack: [unknown, string, number][] = [[value, root, 0]];
  while (stack.length) {
    const [current, path, depth] = stack.pop()!;
    if (typeof current === "string") {
      const problem = stringProblem(current);
      if (problem) return `${path} ${problem}`;
      continue;
    }
    if (current === null || typeof current !== "object" || Buffer.isBuffer(current)) continue;
    if (depth >= maxDepth) return `${path} nests deeper than ${maxDepth} levels`;
    for (const [key, child] of Object.entries(current)) {
      const problem = stringProblem(key);
      if (problem) return `a key in ${path} ${problem}`;
      stack.push([child, Array.isArray(current) ? `${path}[${key}]` : `${path}.${key}`, depth + 1]);
    }
  }
  return null;
}

/** The same rules over a GraphQL document's literals (strings, and object and list nesting). */
export function documentProblem(document: DocumentNode, maxDepth: number): string | null {
  const stack: [ASTNode, number][] = [[document, 0]];
  while (stack.length) {
    const [node, depth] = stack.pop()!;
    if (node.kind === Kind.STRING) {
      const problem = stringProblem(node.value);
      if (problem) return `A string literal ${problem}`;
      continue;
    }
    const nests = node.kind === Kind.OBJECT || node.kind === Kind.LIST;
    if (nests && depth >= maxDepth) return `A literal nests deeper than ${maxDepth} levels`;
    for (const child of Object.values(node)) {
      const children: unknown[] = Array.isArray(child) ? child : [child];
      for (const c of children) {
        if (c && typeof c === "object" && "kind" in c) stack.push([c as ASTNode, depth + (nests ? 1 : 0)]);
      }
    }
  }
  return null;
}

const refused = (message: string) => new AppError(ErrorCode.BAD_USER_INPUT, message);

/** Refuses hostile query strings, route parameters and parsed bodies on every route. */
export function registerInputHygiene(app: FastifyInstance, maxDepth: number): void {
  app.addHook("preValidation", async (request) => {
    const problem =
      inputProblem(request.params, maxDepth, "path") ??
      inputProblem(request.query, maxDepth, "query") ??
      inputProblem(request.body, maxDepth, "body");
    if (problem) throw refused(`Invalid input: ${problem}`);
  });
}

/** The GraphQL side, for GET queries and anything the HTTP hook could not see decoded. */
export function inputHygienePlugin(maxDepth: number): ApolloServerPlugin {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ document, request }) {
          const problem =
            documentProblem(document, maxDepth) ?? inputProblem(request.variables, maxDepth, "variables");
          if (problem) {
            throw new GraphQLError(`Invalid input: ${problem}`, {
              extensions: { code: ErrorCode.BAD_USER_INPUT, http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}
