// GraphiQL at GET /graphql for browsers, served from the package itself: the prebuilt bundle of
// @graphql-yoga/graphiql (React, GraphiQL and Monaco in one file, its editor workers beside it),
// nothing from a CDN, so it works offline. The caller's key comes from the page's fragment
// (`/graphql#key=dh_…`, never sent to the server or written to its logs) or from GraphiQL's own
// headers tab, which remembers it in the browser.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";

const ASSETS: Record<string, string> = {
  "graphiql.js": "yoga-graphiql.umd.js",
  "graphiql.css": "graphiql.css",
  "editor.worker.js": "monacoeditorwork/editor.worker.bundle.js",
  "json.worker.js": "monacoeditorwork/json.worker.bundle.js",
  "graphql.worker.js": "monacoeditorwork/graphql.worker..bundle.js",
};
const PREFIX = "/graphql/ide/";

const DEFAULT_QUERY = `# Datahus GraphQL. Your key goes in the Headers tab below (or open /graphql#key=YOUR_KEY).
query Catalogue {
  datasets(first: 5) {
    edges {
      node {
        slug
        title
        publisher { name }
      }
    }
  }
  categories { name datasetCount }
}
`;

function page(version: string): string {
  const asset = (name: string) => `${PREFIX}${name}?v=${encodeURIComponent(version)}`;
  const options = {
    endpoint: "/graphql",
    title: "Datahus",
    query: DEFAULT_QUERY,
    headers: '{\n  "x-api-key": ""\n}',
  };
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>Datahus GraphiQL</title>
<link rel="stylesheet" href="${asset("graphiql.css")}" />
<style>html, body, #root { height: 100%; margin: 0; }</style>
</head>
<body class="no-focus-outline">
<div id="root"></div>
<script>
  const workers = {
    editorWorkerService: ${JSON.stringify(asset("editor.worker.js"))},
    json: ${JSON.stringify(asset("json.worker.js"))},
    graphql: ${JSON.stringify(asset("graphql.worker.js"))},
  };
  self.MonacoEnvironment = { globalAPI: false, getWorkerUrl: (_id, label) => workers[label] };
</script>
<script src="${asset("graphiql.js")}"></script>
<script>
  const options = ${JSON.stringify(options)};
  // A shared link's query (GraphiQL keeps the one being edited in the address) wins over ours.
  options.query = new URLSearchParams(location.search).get("query") || options.query;
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (key) {
    options.headers = JSON.stringify({ "x-api-key": key }, null, 2);
    history.replaceState(null, "", location.pathname + location.search);
  }
  YogaGraphiQL.renderYogaGraphiQL(document.getElementById("root"), options);
</script>
</body>
</html>
`;
}

/** A browser navigating to the endpoint: it asks for HTML and not for a GraphQL or JSON response. */
export function wantsIde(request: FastifyRequest): boolean {
  if (request.method !== "GET") return false;
  const accept = String(request.headers.accept ?? "").toLowerCase();
  return accept.includes("text/html") && !accept.includes("json");
}

/** Registers the assets; returns the handler that sends the page, for the /graphql route. */
export function registerIde(app: FastifyInstance): (reply: FastifyReply) => FastifyReply {
  const require = createRequire(import.meta.url);
  const dist = dirname(require.resolve("@graphql-yoga/graphiql"));
  const version = String(
    (require("@graphql-yoga/graphiql/package.json") as { version?: string }).version ?? "0",
  );
  const html = page(version);
  const cache = new Map<string, Buffer>();

  app.get<{ Params: { file: string } }>(`${PREFIX}:file`, async (request, reply) => {
    const file = ASSETS[request.params.file];
    if (!file) return reply.status(404).send({ error: { code: "NOT_FOUND", message: "No such file" } });
    let body = cache.get(file);
    if (!body) {
      body = await readFile(join(dist, file));
      cache.set(file, body);
    }
    return reply
      .type(file.endsWith(".css") ? "text/css; charset=utf-8" : "text/javascript; charset=utf-8")
      .header("cache-control", "public, max-age=86400")
      .send(body);
  });

  return (reply) => reply.type("text/html; charset=utf-8").header("cache-control", "no-store").send(html);
}
