// Sources over GraphQL on the real stack: CRUD with per-type validation, secrets encrypted at rest
// and never shown or logged, and connection tests against a loopback HTTP server.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateSourceDocument,
  DeleteSourceDocument,
  SourceNodeDocument,
  SourcesDocument,
  TestSourceConnectionDocument,
  UpdateSourceDocument,
} from "../generated/graphql.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

const TOKEN = "tok_s3cr3t_bearer_value_9f2c";
const NEW_TOKEN = "tok_rotated_value_77ab";
const PASSWORD = "pw-basic-secret-41d0";

let stack: TestStack;
let publisher: TestAccount;
let rival: TestAccount;
let buyer: TestAccount;
let server: Server;
let base: string;
const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
/** Every response text of this file, scanned for secrets at the end. */
const responses: string[] = [];

const CSV =
  'id,name,price\r\n1,"Widget, large",9.50\r\n2,"Say ""hi""",3\r\n3,Gadget,4\r\n4,D,1\r\n5,E,2\r\n6,F,3\r\n';

async function send<TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables: TVars,
  who: TestAccount = publisher,
): Promise<GraphQLResponse<TData>> {
  const res = await stack.graphql(document, variables, who.headers);
  responses.push(JSON.stringify({ data: res.data, errors: res.errors }));
  return res;
}

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

const code = (res: GraphQLResponse<unknown>) => res.errors?.[0]?.extensions?.code;

const httpConfig = (path: string, extra: Record<string, unknown> = {}) => ({
  url: `${base}${path}`,
  auth: { type: "bearer" },
  recordsPath: "data.items",
  ...extra,
});

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url ?? "", headers: req.headers });
    if (req.url?.startsWith("/records")) {
      const items = Array.from({ length: 8 }, (_, i) => ({ id: i + 1, name: `item ${i + 1}` }));
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ data: { items } }));
    } else if (req.url?.startsWith("/broken")) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`internal error`);
    } else if (req.url === "/files/items.csv") {
      res.writeHead(200, { "content-type": "text/csv" });
      res.end(CSV);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  stack = await startStack();
  publisher = await stack.signup("Source Publisher", "PUBLISHER");
  rival = await stack.signup("Rival Publisher", "PUBLISHER");
  buyer = await stack.signup("Source Buyer");
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => server?.close(resolve));
});

describe("sources", () => {
  it("are created, listed, updated and soft-deleted", async () => {
    const created = ok(
      await send(CreateSourceDocument, {
        input: {
          name: "  Orders API ",
          type: "HTTP",
          config: httpConfig("/records"),
          secrets: { token: TOKEN },
          schedule: "0 3 * * *",
        },
      }),
    ).createSource;
    expect(created).toMatchObject({
      name: "Orders API",
      type: "HTTP",
      hasSecrets: true,
      schedule: "0 3 * * *",
      config: httpConfig("/records"),
    });
    const rawId = decodeGlobalId(created.id).id;
    const row = await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } });
    expect(row.accountId).toBe(publisher.rawAccountId);
    expect(row.secretsEncrypted).toMatch(/^v1\./);
    expect(row.secretsEncrypted).not.toContain(TOKEN);
    expect(JSON.stringify(row.config)).not.toContain(TOKEN);

    const listed = ok(await send(SourcesDocument, { first: 10 })).sources.edges.map((e) => e.node);
    expect(listed).toEqual([created]);

    // Leaving secrets out keeps them; giving them replaces them.
    const renamed = ok(
      await send(UpdateSourceDocument, { id: created.id, input: { name: "Orders", schedule: null } }),
    ).updateSource;
    expect(renamed).toMatchObject({ name: "Orders", hasSecrets: true, schedule: null });
    const kept = await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } });
    expect(kept.secretsEncrypted).toBe(row.secretsEncrypted);
    ok(await send(UpdateSourceDocument, { id: created.id, input: { secrets: { token: NEW_TOKEN } } }));
    const rotated = await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } });
    expect(rotated.secretsEncrypted).toMatch(/^v1\./);
    expect(rotated.secretsEncrypted).not.toBe(row.secretsEncrypted);
    const tested = ok(await send(TestSourceConnectionDocument, { id: created.id })).testSourceConnection;
    expect(tested.ok).toBe(true);
    expect(seen.at(-1)?.headers.authorization).toBe(`Bearer ${NEW_TOKEN}`);

    // Removing the secrets an auth needs is refused.
    const stripped = await send(UpdateSourceDocument, { id: created.id, input: { secrets: null } });
    expect(code(stripped)).toBe("BAD_USER_INPUT");

    const other = ok(
      await send(CreateSourceDocument, {
        input: { name: "Events", type: "PUSH", config: { note: "later" } },
      }),
    ).createSource;
    expect(other).toMatchObject({
      type: "PUSH",
      hasSecrets: false,
      config: { note: "later" },
      schedule: null,
    });

    expect(ok(await send(DeleteSourceDocument, { id: created.id })).deleteSource.id).toBe(created.id);
    const after = ok(await send(SourcesDocument, { first: 10 })).sources.edges.map((e) => e.node.id);
    expect(after).toEqual([other.id]);
    expect(ok(await send(SourceNodeDocument, { id: created.id })).node).toBeNull();
    expect(ok(await send(SourceNodeDocument, { id: other.id })).node).toMatchObject({ name: "Events" });
    const deleted = await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } });
    expect(deleted.deletedAt).toBeInstanceOf(Date);
    for (const again of [
      await send(DeleteSourceDocument, { id: created.id }),
      await send(UpdateSourceDocument, { id: created.id, input: { name: "back" } }),
      await send(TestSourceConnectionDocument, { id: created.id }),
    ]) {
      expect(code(again)).toBe("NOT_FOUND");
    }
  });

  it("refuses invalid settings, listing every problem", async () => {
    const bad = await send(CreateSourceDocument, {
      input: {
        name: "",
        type: "HTTP",
        config: { url: "ftp://example.com/x", auth: { type: "bearer", token: "pasted" }, maxPages: 0 },
        schedule: "every day",
      },
    });
    expect(code(bad)).toBe("BAD_USER_INPUT");
    const problems = bad.errors![0]!.extensions!.problems as string[];
    expect(problems.some((p) => p.startsWith("name:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("schedule:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("url:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("maxPages:"))).toBe(true);
    expect(problems.some((p) => p.startsWith("auth"))).toBe(true);

    const missingToken = await send(CreateSourceDocument, {
      input: { name: "No token", type: "HTTP", config: httpConfig("/records") },
    });
    expect(missingToken.errors?.[0]?.extensions?.problems).toEqual(["token: is required for bearer auth"]);

    const file = await send(CreateSourceDocument, {
      input: { name: "Local", type: "FILE", config: { path: "/etc/passwd", delimiter: ";;", extra: 1 } },
    });
    expect(code(file)).toBe("BAD_USER_INPUT");
    const fileProblems = file.errors![0]!.extensions!.problems as string[];
    expect(fileProblems.some((p) => p.startsWith("path: local files are not enabled"))).toBe(true);
    expect(fileProblems.some((p) => p.startsWith("delimiter:"))).toBe(true);
    expect(fileProblems.some((p) => p.includes("extra"))).toBe(true);

    const noFormat = await send(CreateSourceDocument, {
      input: { name: "Unknown", type: "FILE", config: { url: `${base}/files/export` } },
    });
    expect(noFormat.errors?.[0]?.extensions?.problems).toEqual([
      "format: is required when the file name does not end in .csv, .tsv, .json, .ndjson or .parquet",
    ]);
    expect(
      await stack.app.stores.prisma.source.count({
        where: { accountId: publisher.rawAccountId, name: { in: ["", "No token", "Local", "Unknown"] } },
      }),
    ).toBe(0);
  });

  it("tests an HTTP source: the first records with the bearer token, or ok: false", async () => {
    const source = ok(
      await send(CreateSourceDocument, {
        input: { name: "API", type: "HTTP", config: httpConfig("/records"), secrets: { token: TOKEN } },
      }),
    ).createSource;
    const before = seen.length;
    const result = ok(await send(TestSourceConnectionDocument, { id: source.id })).testSourceConnection;
    expect(result.ok).toBe(true);
    expect(result.sampleRecords).toEqual([1, 2, 3, 4, 5].map((i) => ({ id: i, name: `item ${i}` })));
    expect(seen.slice(before)).toHaveLength(1);
    expect(seen.at(-1)!.headers.authorization).toBe(`Bearer ${TOKEN}`);

    const broken = ok(
      await send(CreateSourceDocument, {
        input: {
          name: "Broken",
          type: "HTTP",
          config: httpConfig("/broken", { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } }),
          secrets: { token: TOKEN },
        },
      }),
    ).createSource;
    const started = Date.now();
    const failed = ok(await send(TestSourceConnectionDocument, { id: broken.id })).testSourceConnection;
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(failed.ok).toBe(false);
    expect(failed.message).toMatch(/500/);
    expect(failed.message).not.toContain(TOKEN);
    expect(failed.sampleRecords).toBeNull();
  });

  it("tests a FILE source served over http: the first 5 CSV rows", async () => {
    const source = ok(
      await send(CreateSourceDocument, {
        input: { name: "Items file", type: "FILE", config: { url: `${base}/files/items.csv` } },
      }),
    ).createSource;
    const result = ok(await send(TestSourceConnectionDocument, { id: source.id })).testSourceConnection;
    expect(result.ok).toBe(true);
    expect(result.sampleRecords).toHaveLength(5);
    expect(result.sampleRecords![0]).toEqual({ id: "1", name: "Widget, large", price: "9.50" });
    expect(result.sampleRecords![1]).toMatchObject({ name: 'Say "hi"' });

    const missing = ok(
      await send(CreateSourceDocument, {
        input: { name: "Missing", type: "FILE", config: { url: `${base}/files/none.csv` } },
      }),
    ).createSource;
    const gone = ok(await send(TestSourceConnectionDocument, { id: missing.id })).testSourceConnection;
    expect(gone).toMatchObject({ ok: false, sampleRecords: null });
    expect(gone.message).toMatch(/404/);

    // Connectors answer for themselves: an SFTP server that does not listen is a clear failure.
    const sftp = ok(
      await send(CreateSourceDocument, {
        input: {
          name: "Nobody home",
          type: "SFTP",
          config: { host: "127.0.0.1", port: 1, username: "u", path: "/in/*.csv" },
          secrets: { password: PASSWORD },
        },
      }),
    ).createSource;
    const down = ok(await send(TestSourceConnectionDocument, { id: sftp.id })).testSourceConnection;
    expect(down).toEqual({
      ok: false,
      message: "Cannot reach the SFTP server 127.0.0.1:1 (ECONNREFUSED)",
      sampleRecords: null,
    });
  });

  it("buyers get FORBIDDEN; another publisher gets NOT_FOUND and changes nothing", async () => {
    const mine = ok(
      await send(CreateSourceDocument, {
        input: { name: "Mine", type: "HTTP", config: httpConfig("/records"), secrets: { token: TOKEN } },
      }),
    ).createSource;
    const rawId = decodeGlobalId(mine.id).id;
    const before = await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } });
    const requests = seen.length;

    const buyerAttempts = [
      await send(SourcesDocument, { first: 10 }, buyer),
      await send(CreateSourceDocument, { input: { name: "x", type: "PUSH", config: {} } }, buyer),
      await send(UpdateSourceDocument, { id: mine.id, input: { name: "x" } }, buyer),
      await send(DeleteSourceDocument, { id: mine.id }, buyer),
      await send(TestSourceConnectionDocument, { id: mine.id }, buyer),
    ];
    for (const res of buyerAttempts) expect(code(res)).toBe("FORBIDDEN");

    const rivalAttempts = [
      await send(
        UpdateSourceDocument,
        { id: mine.id, input: { name: "taken", secrets: { token: "x" } } },
        rival,
      ),
      await send(DeleteSourceDocument, { id: mine.id }, rival),
      await send(TestSourceConnectionDocument, { id: mine.id }, rival),
    ];
    for (const res of rivalAttempts) expect(code(res)).toBe("NOT_FOUND");
    expect(ok(await send(SourceNodeDocument, { id: mine.id }, rival)).node).toBeNull();
    expect(ok(await send(SourcesDocument, { first: 10 }, rival)).sources.edges).toEqual([]);

    expect(await stack.app.stores.prisma.source.findUniqueOrThrow({ where: { id: rawId } })).toEqual(before);
    expect(seen.length).toBe(requests);
  });

  it("never shows or logs a secret", () => {
    expect(responses.length).toBeGreaterThan(20);
    const logs = stack.logText();
    for (const secret of [TOKEN, NEW_TOKEN, PASSWORD]) {
      for (const text of responses) expect(text).not.toContain(secret);
      expect(logs).not.toContain(secret);
    }
  });
});
