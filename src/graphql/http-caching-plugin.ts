// Cache-Control for GraphQL responses: catalogue reads sent by GET (plain or persisted queries)
// may be cached for a while and revalidated by ETag (http/server.ts); everything else is
// `no-store`, since records cost credits and carry what the caller bought. The rules are in
// http/graphql-http.ts.
import type { ApolloServerPlugin } from "@apollo/server";
import { isAuthenticated } from "../identity/caller.js";
import { readsCatalogueOnly } from "../http/graphql-http.js";
import type { Context } from "./context.js";

/** Responses differ by these request headers (and by encoding, which compression adds). */
const VARY = "Accept, Authorization, X-API-Key";

export function httpCachingPlugin(maxAgeSeconds: number): ApolloServerPlugin<Context> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ request, response, document, operation, contextValue }) {
          const headers = response.http.headers;
          const cacheable =
            maxAgeSeconds > 0 &&
            request.http?.method === "GET" &&
            response.body.kind === "single" &&
            !response.body.singleResult.errors &&
            document !== undefined &&
            operation !== undefined &&
            readsCatalogueOnly(document, operation);
          if (!cacheable) {
            headers.set("cache-control", "no-store");
            return;
          }
          // A publisher sees its own drafts in the catalogue: what a key reads is for that key only.
          const scope = isAuthenticated(contextValue.caller) ? "private" : "public";
          headers.set("cache-control", `${scope}, max-age=${maxAgeSeconds}`);
          headers.set("vary", VARY);
        },
      };
    },
  };
}
