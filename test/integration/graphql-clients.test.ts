// GraphQL over HTTP as the usual clients speak it, on the real server: urql's and Apollo Client's
// default configurations (GET and POST), CORS preflights, CSRF refusals, one HTTP status per error
// code, compression (streamed exports included), Cache-Control and ETag revalidation.
import { createHash } from "node:crypto";
import http from "node:http";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { CombinedGraphQLErrors } from "@apollo/client/errors";
import { Client, cacheExchange, fetchExchange } from "@urql/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ref } from "../../src/records/read.service.js";
import { writeRecords } from "../../src/records/records.writer.js";
import { CreateDatasetDocument, PublishDatasetDocument } from "../generated/graphql.js";
import { uniqueName } from "../support/databases.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let buyer: TestAccount;
let slug: string;
const ROWS = 3000;

const CATALOGUE = gql`
  query Catalogue($slug: String!) {
    categories {
      id
      name
      datasetCount
    }
    dataset(slug: $slug) {
      id
      slug
      title
      publisher {
        id
        name
        slug
      }
    }
  }
`;
const CATALOGUE_TEXT = `query Catalogue($slug: String!) { dataset(slug: $slug) { id slug title publisher { id name } } }`;
const VIEWER = gql`
  query Viewer {
    me {
      id
      scopes
      account {
        id
        plan {
          id
          code
        }
      }
    }
  }
`;
const RECORDS = gql`
  query Records($slug: String!) {
    dataset(slug: $slug) {
      id
      records(first: 50) {
        edges {
          node {
            key
            values
          }
        }
      }
    }
  }
`;

beforeAll(async () => {
  stack = await startStack();
  publisher = await stack.signup("Client Publisher", "PUBLISHER");
  buyer = await stack.signup("Client Buyer");
  slug = uniqueName("clients").toLowerCase();
  const created = await stack.graphql(
    CreateDatasetDocument,
    {
      input: {
        slug,
        title: "Clients",
        category: "tools",
        access: "OPEN",
        keyColumns: ["id"],
        columns: [
          { name: "id", type: "INT32", nullable: false },
          { name: "name", type: "STRING", nullable: false },
        ],
      },
    },
    publisher.headers,
  );
  expect(created.errors).toBeUndefined();
  const target = ref(await stack.app.stores.prisma.dataset.findUniqueOrThrow({ where: { slug } }));
  const rows = Array.from({ length: ROWS }, (_, i) => ({ id: i + 1, name: `customer number ${i + 1}` }));
  await writeRecords(stack.app.stores.clickhouse, stack.app.config.CLICKHOUSE_DATABASE, target, rows, {
    version: 1,
    runId: "seed",
    chunkSize: 10_000,
  });
  await stack.graphql(PublishDatasetDocument, { id: created.data!.createDataset.id }, publisher.headers);
});

afterAll(async () => {
  await stack?.close();
});

/** Every request a client sends, with its method and headers, for asserting what went over the wire. */
function recordingFetch(seen: { method: string; status: number }[]): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    seen.push({ method: init?.method ?? "GET", status: res.status });
    return res;
  };
}

function urql(headers: Record<string, string> = {}, seen: { method: string; status: number }[] = []) {
  return new Client({
    url: `${stack.url}/graphql`,
    exchanges: [cacheExchange, fetchExchange],
    fetchOptions: { headers },
    fetch: recordingFetch(seen),
  });
}

function apollo(
  options: { headers?: Record<string, string>; useGETForQueries?: boolean },
  seen: { method: string; status: number }[] = [],
) {
  return new ApolloClient({
    link: new HttpLink({
      uri: `${stack.url}/graphql`,
      headers: options.headers,
      useGETForQueries: options.useGETForQueries,
      fetch: recordingFetch(seen),
    }),
    cache: new InMemoryCache(),
  });
}

/** A raw HTTP/1.1 request, so that encodings and status codes are seen exactly as sent. */
function raw(
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  const { port } = new URL(stack.url);
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: "127.0.0.1", port, path, method: options.method ?? "GET", headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end(options.body);
  });
}

const getPath = (query: string, variables: unknown, extra: Record<string, string> = {}) =>
  `/graphql?${new URLSearchParams({ query, variables: JSON.stringify(variables), ...extra })}`;

describe("urql's default client", () => {
  it("sends queries by GET and mutations by POST, anonymously and with a key", async () => {
    const seen: { method: string; status: number }[] = [];
    const anonymous = await urql({}, seen).query(CATALOGUE, { slug }).toPromise();
    expect(anonymous.error).toBeUndefined();
    expect(anonymous.data.dataset.publisher).toMatchObject({ name: "Client Publisher" });
    expect(anonymous.data.dataset.publisher.id).toEqual(expect.any(String));
    expect(anonymous.data.categories.find((c: { name: string }) => c.name === "tools")).toMatchObject({
      id: expect.any(String),
      datasetCount: 1,
    });

    const keyed = await urql(buyer.headers, seen).query(RECORDS, { slug }).toPromise();
    expect(keyed.error).toBeUndefined();
    expect(keyed.data.dataset.records.edges).toHaveLength(50);

    const mutation = await urql(buyer.headers, seen)
      .mutation(
        gql`
          mutation {
            createApiKey(input: { name: "from urql" }) {
              secret
            }
          }
        `,
        {},
      )
      .toPromise();
    expect(mutation.error?.message ?? "").not.toMatch(/CSRF|forgery/i);
    expect(seen.map((r) => `${r.method} ${r.status}`)).toEqual([
      "GET 200",
      "GET 200",
      expect.stringMatching(/^POST /),
    ]);
  });

  it("sees the error code of a missing and of a wrong key alike", async () => {
    for (const headers of [{}, { "x-api-key": "dh_wrong_key_0000000000000000" }] as Record<
      string,
      string
    >[]) {
      const seen: { method: string; status: number }[] = [];
      const res = await urql(headers, seen).query(VIEWER, {}).toPromise();
      expect(res.error?.graphQLErrors.map((e) => e.extensions.code)).toEqual(["UNAUTHENTICATED"]);
      expect(seen).toEqual([{ method: "GET", status: 401 }]);
    }
  });
});

describe("Apollo Client's default configuration", () => {
  for (const useGETForQueries of [false, true]) {
    const method = useGETForQueries ? "GET" : "POST";
    it(`queries by ${method} and normalizes every object it caches`, async () => {
      const seen: { method: string; status: number }[] = [];
      const client = apollo({ headers: buyer.headers, useGETForQueries }, seen);
      const catalogue = await client.query({ query: CATALOGUE, variables: { slug } });
      expect(catalogue.data).toBeDefined();
      const viewer = await client.query({ query: VIEWER });
      expect((viewer.data as { me: { scopes: string[] } }).me.scopes.length).toBeGreaterThan(0);
      expect(seen.map((r) => `${r.method} ${r.status}`)).toEqual([`${method} 200`, `${method} 200`]);
      const keys = Object.keys(client.cache.extract() as object);
      for (const type of ["Publisher", "Category", "Dataset", "Viewer", "Plan", "Account"]) {
        expect(
          keys.some((k) => k.startsWith(`${type}:`)),
          `${type} normalized`,
        ).toBe(true);
      }
    });
  }

  it("reports a missing and a wrong key as the same GraphQL error with its code", async () => {
    for (const headers of [{}, { "x-api-key": "dh_wrong_key_0000000000000000" }] as Record<
      string,
      string
    >[]) {
      for (const useGETForQueries of [false, true]) {
        const seen: { method: string; status: number }[] = [];
        const client = apollo({ headers, useGETForQueries }, seen);
        const result = await client.query({ query: VIEWER, errorPolicy: "none" }).catch((e: unknown) => e);
        const error = "error" in (result as object) ? (result as { error: unknown }).error : result;
        expect(CombinedGraphQLErrors.is(error), String(error)).toBe(true);
        expect((error as CombinedGraphQLErrors).errors.map((e) => e.extensions?.code)).toEqual([
          "UNAUTHENTICATED",
        ]);
        expect(seen.map((r) => r.status)).toEqual([401]);
      }
    }
  });
});

describe("CSRF protection", () => {
  const query = "{ categories { name } }";
  it("refuses a GET that asks for no JSON and carries no preflight header", async () => {
    // What an <img> or a script tag sends (a navigation asking for HTML gets GraphiQL instead).
    for (const headers of [{ accept: "image/avif,image/webp,*/*" }, {}] as Record<string, string>[]) {
      const plain = await raw(getPath(query, {}), { headers });
      expect(plain.status).toBe(400);
      expect(JSON.parse(plain.body.toString()).errors[0].extensions.code).toBe("BAD_USER_INPUT");
    }
    for (const headers of [
      { accept: "application/json" },
      { accept: "application/graphql-response+json" },
      { accept: "*/*", "apollo-require-preflight": "1" },
    ] as Record<string, string>[]) {
      expect((await raw(getPath(query, {}), { headers })).status).toBe(200);
    }
  });

  it("refuses a POST a form could send, and a mutation by GET", async () => {
    const form = await raw("/graphql", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ query }),
    });
    expect(form.status).toBe(400);
    const mutation = await raw(getPath('mutation { createApiKey(input: { name: "x" }) { secret } }', {}), {
      headers: { accept: "application/json", ...buyer.headers },
    });
    expect(mutation.status).toBe(405);
  });
});

describe("CORS", () => {
  it("answers a preflight from any origin when no origins are configured", async () => {
    for (const path of ["/graphql", "/api/v1/data/query"]) {
      const res = await raw(path, {
        method: "OPTIONS",
        headers: {
          origin: "https://app.example.com",
          "access-control-request-method": "POST",
          "access-control-request-headers": "content-type,x-api-key",
        },
      });
      expect(res.status).toBe(204);
      expect(res.headers["access-control-allow-origin"]).toBe("*");
      expect(String(res.headers["access-control-allow-methods"])).toMatch(/POST/);
      expect(String(res.headers["access-control-allow-headers"]).toLowerCase()).toMatch(/x-api-key/);
    }
  });

  it("exposes the credit and rate-limit headers to browsers", async () => {
    const res = await raw("/graphql", {
      method: "POST",
      headers: { origin: "https://app.example.com", "content-type": "application/json", ...buyer.headers },
      body: JSON.stringify({ query: "{ me { id } }" }),
    });
    expect(res.status).toBe(200);
    expect(res.headers["x-credits-remaining"]).toBeDefined();
    const exposed = String(res.headers["access-control-expose-headers"]).toLowerCase().split(/,\s*/);
    expect(exposed).toEqual(
      expect.arrayContaining(["x-credits-remaining", "x-ratelimit-remaining", "retry-after"]),
    );
  });

  it("lets only the listed origins in when CORS_ORIGINS is set", async () => {
    const own = await startStack({ CORS_ORIGINS: "https://allowed.example" });
    try {
      const preflight = (origin: string) =>
        fetch(`${own.url}/graphql`, {
          method: "OPTIONS",
          headers: {
            origin,
            "access-control-request-method": "POST",
            "access-control-request-headers": "x-api-key",
          },
        });
      const allowed = await preflight("https://allowed.example");
      expect(allowed.headers.get("access-control-allow-origin")).toBe("https://allowed.example");
      expect(allowed.headers.get("access-control-allow-credentials")).toBe("true");
      expect((await preflight("https://evil.example")).headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await own.close();
    }
  });
});

describe("compression", () => {
  it("gzips and brotli-compresses GraphQL responses when asked", async () => {
    const body = JSON.stringify({
      query: "query($s: String!) { dataset(slug: $s) { records(first: 100) { edges { node { values } } } } }",
      variables: { s: slug },
    });
    const headers = { "content-type": "application/json", ...buyer.headers };
    const plain = await raw("/graphql", { method: "POST", headers, body });
    expect(plain.headers["content-encoding"]).toBeUndefined();
    const gzip = await raw("/graphql", {
      method: "POST",
      headers: { ...headers, "accept-encoding": "gzip" },
      body,
    });
    expect(gzip.headers["content-encoding"]).toBe("gzip");
    expect(gzip.body.length).toBeLessThan(plain.body.length / 2);
    const br = await raw("/graphql", {
      method: "POST",
      headers: { ...headers, "accept-encoding": "br" },
      body,
    });
    expect(br.headers["content-encoding"]).toBe("br");
    // The same records, decoded (the cost in extensions differs: each read is charged).
    const records = (b: Buffer) => JSON.parse(b.toString()).data;
    expect(records(gunzipSync(gzip.body))).toEqual(records(plain.body));
    expect(records(brotliDecompressSync(br.body))).toEqual(records(plain.body));
  });

  it("compresses a streamed export", async () => {
    const path = `/api/v1/data/export?${new URLSearchParams({ dataset: slug, format: "csv" })}`;
    const res = await raw(path, { headers: { ...buyer.headers, "accept-encoding": "gzip" } });
    expect(res.status).toBe(200);
    expect(res.headers["content-encoding"]).toBe("gzip");
    const lines = gunzipSync(res.body).toString().trim().split("\n");
    expect(lines).toHaveLength(ROWS + 1);
    expect(res.body.length).toBeLessThan(gunzipSync(res.body).length / 3);
  });
});

describe("caching", () => {
  const accept = { accept: "application/graphql-response+json" };

  it("lets catalogue reads by GET be cached and revalidated by ETag", async () => {
    const path = getPath(CATALOGUE_TEXT, { slug });
    const first = await raw(path, { headers: accept });
    expect(first.status).toBe(200);
    expect(first.headers["cache-control"]).toBe("public, max-age=60");
    expect(first.headers.vary).toMatch(/X-API-Key/i);
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await raw(path, { headers: { ...accept, "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const keyed = await raw(path, { headers: { ...accept, ...buyer.headers } });
    expect(keyed.headers["cache-control"]).toBe("private, max-age=60");
  });

  it("caches persisted catalogue queries by GET, never record reads or POSTs", async () => {
    const sha256Hash = createHash("sha256").update(CATALOGUE_TEXT).digest("hex");
    const persisted = JSON.stringify({ persistedQuery: { version: 1, sha256Hash } });
    const byHash = `/graphql?${new URLSearchParams({ variables: JSON.stringify({ slug }), extensions: persisted })}`;
    const unknown = await raw(byHash, { headers: accept });
    expect(JSON.parse(unknown.body.toString()).errors[0].extensions.code).toBe("PERSISTED_QUERY_NOT_FOUND");
    const registered = await raw(getPath(CATALOGUE_TEXT, { slug }, { extensions: persisted }), {
      headers: accept,
    });
    expect(registered.status).toBe(200);
    const hit = await raw(byHash, { headers: accept });
    expect(hit.status).toBe(200);
    expect(hit.headers["cache-control"]).toBe("public, max-age=60");
    expect((await raw(byHash, { headers: { ...accept, "if-none-match": hit.headers.etag! } })).status).toBe(
      304,
    );

    const recordsQuery = `query($s: String!) { dataset(slug: $s) { records(first: 1) { edges { cursor } } } }`;
    const read = await raw(getPath(recordsQuery, { s: slug }), { headers: { ...accept, ...buyer.headers } });
    expect(read.status).toBe(200);
    expect(read.headers["cache-control"]).toBe("no-store");
    expect(read.headers.etag).toBeUndefined();
    const post = await raw("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ query: CATALOGUE_TEXT, variables: { slug } }),
    });
    expect(post.headers["cache-control"]).toBe("no-store");
    expect(post.headers.etag).toBeUndefined();
  });
});
