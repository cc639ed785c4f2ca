// Sources under the production outbound policy (no OUTBOUND_ALLOW_* set): a publisher cannot point
// any kind of source at the platform's own network. Each target below is a real loopback listener
// that counts connections, so "refused" also means "never contacted".
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { outboundPolicy, pinnedSocket } from "../../src/net/outbound.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { CreateSourceDocument, TestSourceConnectionDocument, type SourceType } from "../generated/graphql.js";
import { ok, publishing } from "../support/publishing.js";
import { collect, connectorContext } from "../support/connector-context.js";
import { startSshd } from "../support/sshd.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let publisher: TestAccount;
let listener: Server;
let port: number;
let connections = 0;

beforeAll(async () => {
  listener = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  port = (listener.address() as { port: number }).port;
  stack = await startStack({ OUTBOUND_ALLOW_CIDRS: "", OUTBOUND_ALLOW_PRIVATE: "false" }, { worker: true });
  publisher = await stack.signup("Outbound publisher", "PUBLISHER");
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => listener?.close(resolve));
});

// One loopback (or private) target per connector, with the setting that names it.
const targets = (host: string): [SourceType, string, Record<string, unknown>, Record<string, string>][] => {
  const web = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return [
    ["HTTP", "url", { url: `http://${web}:${port}/items` }, {}],
    ["FILE", "url", { url: `http://${web}:${port}/data.csv` }, {}],
    [
      "POSTGRES",
      "host",
      { host, port, database: "shop", user: "reader", query: "SELECT 1 AS one" },
      { password: "pw" },
    ],
    ["SFTP", "host", { host, port, username: "drop", path: "/in/*.csv" }, { password: "pw" }],
    [
      "S3",
      "endpoint",
      { endpoint: `http://${web}:${port}`, bucket: "drops", region: "us-east-1", glob: "*.csv" },
      { accessKeyId: "AKIA", secretAccessKey: "secret" },
    ],
  ];
};

describe("sources under the default outbound policy", () => {
  it.each(["127.0.0.1", "localhost", "::1", "10.1.2.3", "169.254.169.254"])(
    "refuses every source type pointed at %s when it is created, without connecting",
    async (host) => {
      const before = connections;
      for (const [type, field, config, secrets] of targets(host)) {
        const res = await stack.graphql(
          CreateSourceDocument,
          { input: { type, name: `${type} at ${host}`, config, secrets } },
          publisher.headers,
        );
        expect(res.data, `${type} ${host}`).toBeNull();
        const error = res.errors?.[0];
        expect(error?.extensions?.code, `${type} ${host}`).toBe("BAD_USER_INPUT");
        expect(error?.message).toMatch(
          new RegExp(
            `^Invalid source: ${field}: .*not a public address \\([a-z-]+\\); this server does not contact it$`,
          ),
        );
      }
      expect(connections).toBe(before);
    },
  );

  it("refuses again when a stored source is read (DNS may have changed since it was checked)", async () => {
    const settings = {
      outbound: outboundPolicy({ OUTBOUND_ALLOW_PRIVATE: false, OUTBOUND_ALLOW_CIDRS: [] }),
    };
    const before = connections;
    for (const [type, field, config, secrets] of targets("127.0.0.1")) {
      const connector = connectorFor(type, settings)!;
      const failure = await collect(connector.read(connectorContext(config, secrets))).then(
        () => null,
        (error: unknown) => error,
      );
      expect(failure, type).toBeInstanceOf(AppError);
      expect((failure as AppError).code, type).toBe("BAD_USER_INPUT");
      expect((failure as AppError).message, type).toContain(
        `${field}: 127.0.0.1 is not a public address (loopback)`,
      );
      await expect(connector.sample(connectorContext(config, secrets), 5), type).rejects.toMatchObject({
        code: "BAD_USER_INPUT",
      });
    }
    expect(connections).toBe(before);
  });

  it("fails a run, and a connection test, whose stored target has become private, without connecting", async () => {
    const journey = publishing(stack, publisher);
    const ds = await journey.dataset([{ name: "id", type: "INT64", nullable: false }]);
    // A public address passes the create-time check (nothing is contacted then).
    const source = await journey.source("HTTP", { url: "http://93.184.215.14/items" });
    const pipeline = await journey.pipeline(source, ds.id, "FULL_REFRESH");
    // What a DNS change would do to a stored name: the target now leads inside.
    await stack.app.stores.prisma.source.update({
      where: { id: decodeGlobalId(source).id },
      data: { config: { url: `http://127.0.0.1:${port}/items` } },
    });
    const before = connections;

    const run = await journey.finished(await journey.run(pipeline));
    expect(run.status).toBe("FAILED");
    expect(run.error).toContain(
      "url: 127.0.0.1 is not a public address (loopback); this server does not contact it",
    );
    const test = ok(await stack.graphql(TestSourceConnectionDocument, { id: source }, publisher.headers));
    expect(test.testSourceConnection).toMatchObject({ ok: false, sampleRecords: null });
    expect(test.testSourceConnection.message).toContain("127.0.0.1 is not a public address (loopback)");
    expect(connections).toBe(before);
    expect(await journey.state(ds)).toEqual({ version: 0, rowCount: 0 });
  });

  it("lets the operator allow a range: the same loopback source is created and contacted", async () => {
    const allowing = {
      outbound: outboundPolicy({ OUTBOUND_ALLOW_PRIVATE: false, OUTBOUND_ALLOW_CIDRS: ["127.0.0.0/8"] }),
    };
    const [, , config] = targets("127.0.0.1")[0]!;
    const before = connections;
    await expect(connectorFor("HTTP", allowing)!.checkTargets!(config)).resolves.toBeUndefined();
    // The listener hangs up at once: a network failure, not a refusal.
    await expect(
      connectorFor("HTTP", allowing)!.sample(connectorContext({ ...config, retry: { attempts: 1 } }, {}), 1),
    ).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    expect(connections).toBe(before + 1);
  });

  it("follows no redirect, so an allowed host cannot send a source to a refused one", async () => {
    // Only 127.0.0.1 is allowed; it redirects to 127.0.0.2, which counts connections.
    const settings = {
      outbound: outboundPolicy({ OUTBOUND_ALLOW_PRIVATE: false, OUTBOUND_ALLOW_CIDRS: ["127.0.0.1/32"] }),
    };
    let inner = 0;
    const target = createServer((socket) => {
      inner++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => target.listen(0, "127.0.0.2", resolve));
    const innerUrl = `http://127.0.0.2:${(target.address() as { port: number }).port}/data.csv`;
    const redirector = createHttpServer((_req, res) => res.writeHead(302, { location: innerUrl }).end());
    await new Promise<void>((resolve) => redirector.listen(0, "127.0.0.1", resolve));
    const outer = `http://127.0.0.1:${(redirector.address() as { port: number }).port}`;
    try {
      for (const [type, url] of [
        ["HTTP", `${outer}/items`],
        ["FILE", `${outer}/data.csv`],
      ] as const) {
        const failure = await collect(connectorFor(type, settings)!.read(connectorContext({ url }, {}))).then(
          () => null,
          (error: unknown) => error,
        );
        expect(failure, type).toMatchObject({ code: "BAD_USER_INPUT" });
        expect((failure as AppError).message, type).toMatch(
          /redirected \(302\); set the source URL to the final address/,
        );
      }
      expect(inner).toBe(0);
    } finally {
      redirector.close();
      target.close();
    }
  });

  it("connects pinned to the checked addresses when allowed, by name too (PostgreSQL, SFTP)", async () => {
    const allowing = {
      outbound: outboundPolicy({
        OUTBOUND_ALLOW_PRIVATE: false,
        OUTBOUND_ALLOW_CIDRS: ["127.0.0.0/8", "::1/128"],
      }),
    };
    const server = new URL(stack.app.config.DATABASE_URL);
    const postgres = connectorFor("POSTGRES", allowing)!;
    const pgConfig = {
      host: "localhost",
      port: Number(server.port || 5432),
      database: server.pathname.slice(1),
      user: decodeURIComponent(server.username),
      query: "SELECT 41 + 1 AS answer",
    };
    const pgSecrets: Record<string, string> = server.password
      ? { password: decodeURIComponent(server.password) }
      : {};
    await expect(postgres.checkTargets!(pgConfig)).resolves.toBeUndefined();
    expect((await postgres.sample(connectorContext(pgConfig, pgSecrets), 5)).records).toEqual([
      { answer: 42 },
    ]);

    const sshd = await startSshd();
    try {
      await sshd.put("pinned/a.csv", "id\n7\n");
      const sftp = connectorFor("SFTP", allowing)!;
      const sftpConfig = {
        host: "localhost",
        port: sshd.port,
        username: sshd.username,
        path: `${sshd.root}/pinned/*.csv`,
      };
      const rows = await collect(sftp.read(connectorContext(sftpConfig, { password: sshd.password })));
      expect(rows).toMatchObject([{ ok: true, record: { id: "7" } }]);
      // A wrong port fails as a network error, reported, not thrown at the process.
      await expect(
        collect(sftp.read(connectorContext({ ...sftpConfig, port }, { password: sshd.password }))),
      ).rejects.toMatchObject({ code: "SERVICE_UNAVAILABLE" });
    } finally {
      await sshd.stop();
    }
  });

  it("pinned sockets reach the checked addresses whatever the name would resolve to", async () => {
    const before = connections;
    const socket = pinnedSocket([{ address: "127.0.0.1", family: 4 }]);
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve).once("error", reject);
      socket.connect(port, "no-such-host.invalid");
    });
    socket.destroy();
    await expect.poll(() => connections).toBe(before + 1);
  });
});
