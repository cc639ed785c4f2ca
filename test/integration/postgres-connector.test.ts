// The PostgreSQL source against the real PostgreSQL: a scratch database and table made here, read
// in full and incrementally through a server-side cursor, values made JSON-friendly, the
// checkpoint bound (never spliced into SQL), writes and slow queries refused, and login failures
// told clearly without the password. The local server trusts loopback logins, so the wrong
// password is answered by a loopback stub that speaks PostgreSQL's startup protocol and refuses
// the password as PostgreSQL does (SQLSTATE 28P01).
import { createServer, type Server } from "node:net";
import type { AddressInfo } from "node:net";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { failure } from "../support/failures.js";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { postgresConnector } from "../../src/sources/connectors/postgres.connector.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import { CreateSourceDocument, TestSourceConnectionDocument } from "../generated/graphql.js";
import { baseConfig, onServer, uniqueName, withDatabase } from "../support/databases.js";
import { sqlSourceHarness } from "../support/sql-sources.js";
import { startStack, type TestStack } from "../support/stack.js";

const config = baseConfig();
const database = uniqueName("pgsrc");
const url = withDatabase(config.DATABASE_URL, database);
let db: pg.Client;
const server = new URL(config.DATABASE_URL);
const at = { host: server.hostname, port: Number(server.port || 5432), database, user: server.username };

const { context, readAll } = sqlSourceHarness(postgresConnector, at);

beforeAll(async () => {
  await onServer(config.DATABASE_URL, [`CREATE DATABASE "${database}"`]);
  db = new pg.Client({ connectionString: url });
  await db.connect();
  await db.query(`
    CREATE TABLE events (
      id bigint PRIMARY KEY,
      name text NOT NULL,
      amount numeric(20, 2),
      happened_at timestamptz NOT NULL,
      local_at timestamp,
      day date,
      payload jsonb,
      flag boolean,
      small integer
    );
    INSERT INTO events VALUES
      (1, 'first', 12.50, '2026-01-01 10:00:00.123456+00', '2026-01-01 10:00:00', '2026-01-02', '{"a": [1, 2]}', true, 7),
      (2, 'O''Reilly; DROP TABLE events', 123456789012345678.99, '2026-01-01 10:00:00.123457+00', NULL, NULL, NULL, NULL, NULL),
      (9007199254740993, 'big', -0.01, '2026-01-02 00:00:00+02', NULL, '2105-12-31', '"text"', false, -1);
  `);
});

afterAll(async () => {
  await db?.end();
  await onServer(config.DATABASE_URL, [`DROP DATABASE IF EXISTS "${database}" WITH (FORCE)`]);
});

describe("settings", () => {
  it("is registered for POSTGRES and lists every problem, never taking a password in the URL", () => {
    expect(connectorFor("POSTGRES")).toBe(postgresConnector);
    expect(postgresConnector.validate({ ...at, query: "SELECT 1" }, {})).toEqual([]);
    expect(
      postgresConnector.validate({ url: "postgres://reader@db.example:5433/shop", query: "SELECT 1" }, {}),
    ).toEqual([]);
    expect(
      postgresConnector.validate({ url: "postgres://reader:hunter2@db.example/shop", query: "SELECT 1" }, {}),
    ).toEqual(["url: must not carry the password; put it in secrets.password"]);
    const problems = postgresConnector.validate({ cursorColumn: "id; DROP", port: 0, password: "x" }, {});
    expect(problems.map((p) => p.split(":")[0]).sort()).toEqual(["(root)", "cursorColumn", "port", "query"]);
    expect(postgresConnector.validate({ query: "SELECT 1" }, {})).toEqual([
      "host: is required (or give url)",
      "database: is required (or give url)",
      "user: is required (or give url)",
    ]);
  });
});

describe("reading", () => {
  it("reads every row with JSON-friendly values, and the largest cursor as the checkpoint", async () => {
    const { ctx } = context({ query: "SELECT * FROM events;", cursorColumn: "id" }, { mode: "FULL_REFRESH" });
    const { rows, records, checkpoint } = await readAll(ctx);
    expect(rows.every((r) => r.ok)).toBe(true);
    expect(rows.map((r) => r.rowNumber)).toEqual([1, 2, 3]);
    expect(records).toEqual([
      {
        id: "1",
        name: "first",
        amount: "12.50",
        happened_at: "2026-01-01T10:00:00.123456Z",
        local_at: "2026-01-01T10:00:00",
        day: "2026-01-02",
        payload: { a: [1, 2] },
        flag: true,
        small: 7,
      },
      {
        id: "2",
        name: "O'Reilly; DROP TABLE events",
        amount: "123456789012345678.99",
        happened_at: "2026-01-01T10:00:00.123457Z",
        local_at: null,
        day: null,
        payload: null,
        flag: null,
        small: null,
      },
      {
        id: "9007199254740993",
        name: "big",
        amount: "-0.01",
        happened_at: "2026-01-01T22:00:00Z",
        local_at: null,
        day: "2105-12-31",
        payload: "text",
        flag: false,
        small: -1,
      },
    ]);
    expect(checkpoint).toBe("9007199254740993");
  });

  it("reads incrementally: after inserts, only the new rows, bound as a parameter", async () => {
    const settings = { query: "SELECT id, name FROM events", cursorColumn: "id" };
    const first = await readAll(context(settings).ctx);
    expect(first.records.map((r) => r!.id)).toEqual(["1", "2", "9007199254740993"]);

    await db.query(
      `INSERT INTO events (id, name, happened_at) VALUES (9007199254740994, 'new a', now()), (9007199254740995, 'new b', now())`,
    );
    const second = await readAll(context(settings, { checkpoint: first.checkpoint }).ctx);
    expect(second.records).toEqual([
      { id: "9007199254740994", name: "new a" },
      { id: "9007199254740995", name: "new b" },
    ]);
    expect(second.checkpoint).toBe("9007199254740995");

    // Nothing new: no rows, and the checkpoint stays.
    const third = await readAll(context(settings, { checkpoint: second.checkpoint }).ctx);
    expect(third).toMatchObject({ records: [], checkpoint: "9007199254740995" });

    // The checkpoint is a value, never SQL: text that would widen a spliced WHERE is a type error.
    const hostile = await failure(() => readAll(context(settings, { checkpoint: "0 OR true" }).ctx));
    expect(hostile.code).toBe("BAD_USER_INPUT");
    expect(hostile.message).toMatch(/invalid input syntax for type bigint/);
  });

  it("keeps timestamp cursors exact to the microsecond", async () => {
    const settings = {
      query: "SELECT id, happened_at FROM events WHERE id < 100",
      cursorColumn: "happened_at",
    };
    const all = await readAll(context(settings).ctx);
    expect(all.checkpoint).toBe("2026-01-01T10:00:00.123457Z");
    const after = await readAll(context(settings, { checkpoint: "2026-01-01T10:00:00.123456Z" }).ctx);
    // A JS Date would have kept .123 and re-read row 1.
    expect(after.records.map((r) => r!.id)).toEqual(["2"]);
  });

  it("streams a large result a FETCH at a time", async () => {
    const { ctx, debug } = context({
      query: "SELECT g AS n, repeat('x', 100) AS pad FROM generate_series(1, 2500) g",
      cursorColumn: "n",
      fetchSize: 1000,
    });
    const { rows, checkpoint } = await readAll(ctx);
    expect(rows).toHaveLength(2500);
    expect(checkpoint).toBe(2500);
    expect(debug.map((d) => d.rows)).toEqual([1000, 1000, 500, 0]);
  });

  it("samples the first rows", async () => {
    const { ctx } = context({ query: "SELECT id FROM events ORDER BY id", fetchSize: 1000 });
    const sample = await postgresConnector.sample(ctx, 2);
    expect(sample.records).toEqual([{ id: "1" }, { id: "2" }]);
    expect(sample.message).toBe(`Read 2 row(s) from ${at.host}:${at.port}/${database}`);
  });
});

describe("refusals", () => {
  it("refuses writes: the transaction is read-only", async () => {
    await db.query("CREATE SEQUENCE IF NOT EXISTS counter");
    const before = await db.query("SELECT last_value FROM counter");
    const write = await failure(() => readAll(context({ query: "SELECT nextval('counter') AS n" }).ctx));
    expect(write.message).toBe("The query tried to write; PostgreSQL sources only read");
    expect((await db.query("SELECT last_value FROM counter")).rows).toEqual(before.rows);

    // A data-modifying WITH cannot even run as the subquery the query becomes.
    const count = async () => (await db.query("SELECT count(*)::int AS n FROM events")).rows;
    const rowsBefore = await count();
    const cte = await failure(() =>
      readAll(
        context({
          query:
            "WITH x AS (INSERT INTO events (id, name, happened_at) VALUES (-5, 'w', now()) RETURNING id) SELECT * FROM x",
        }).ctx,
      ),
    );
    expect(cte.code).toBe("BAD_USER_INPUT");
    expect(await count()).toEqual(rowsBefore);
  });

  it("stops a query at statementTimeoutMs", async () => {
    const started = Date.now();
    const slow = await failure(() =>
      readAll(context({ query: "SELECT pg_sleep(5) AS s", statementTimeoutMs: 1000 }).ctx),
    );
    expect(Date.now() - started).toBeLessThan(4000);
    expect(slow.message).toMatch(/statementTimeoutMs \(1000 ms\)/);
  });

  it("says what is wrong with a bad query or database", async () => {
    const bad = await failure(() => readAll(context({ query: "SELECT nope FROM events" }).ctx));
    expect(bad.message).toMatch(/^The source query failed: column "nope" does not exist/);
    const noDb = await failure(() =>
      readAll(context({ query: "SELECT 1", database: `${database}_none` }).ctx),
    );
    expect(noDb.message).toMatch(/does not exist/);
  });

  it("tells a refused password clearly, without the password; an unreachable server likewise", async () => {
    const passwords: string[] = [];
    const stub: Server = createServer((socket) => {
      let buffer = Buffer.alloc(0);
      let started = false;
      socket.on("data", (chunk: Buffer) => {
        buffer = Buffer.concat([buffer, chunk]);
        if (!started) {
          if (buffer.length < 4 || buffer.length < buffer.readInt32BE(0)) return;
          buffer = buffer.subarray(buffer.readInt32BE(0));
          started = true;
          const askPassword = Buffer.alloc(9); // AuthenticationCleartextPassword
          askPassword.write("R", 0);
          askPassword.writeInt32BE(8, 1);
          askPassword.writeInt32BE(3, 5);
          socket.write(askPassword);
        }
        if (buffer.length < 5 || buffer.length < buffer.readInt32BE(1) + 1) return;
        passwords.push(buffer.subarray(5, buffer.readInt32BE(1)).toString("utf8"));
        const fields = Buffer.from(
          'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "reader"\0\0',
        );
        const header = Buffer.alloc(5);
        header.write("E", 0);
        header.writeInt32BE(4 + fields.length, 1);
        socket.end(Buffer.concat([header, fields]));
      });
    });
    await new Promise<void>((resolve) => stub.listen(0, "127.0.0.1", resolve));
    const port = (stub.address() as AddressInfo).port;
    try {
      const password = "wr0ng-Passw0rd-7c1e";
      const { ctx } = context(
        { host: "127.0.0.1", port, user: "reader", query: "SELECT 1" },
        { secrets: { password } },
      );
      const refused = await failure(() => readAll(ctx));
      expect(passwords).toEqual([password]);
      expect(refused.code).toBe("BAD_USER_INPUT");
      expect(refused.message).toBe(
        `PostgreSQL at 127.0.0.1:${port}/${database} refused the login: password authentication failed for user "reader"`,
      );
      expect(JSON.stringify({ message: refused.message, fields: refused.fields })).not.toContain(password);
    } finally {
      await new Promise((resolve) => stub.close(resolve));
    }
    const closed = await failure(() => readAll(context({ host: "127.0.0.1", port, query: "SELECT 1" }).ctx));
    expect(closed.code).toBe("SERVICE_UNAVAILABLE");
    expect(closed.message).toMatch(/^Could not reach PostgreSQL at 127\.0\.0\.1:\d+/);
  });
});

describe("as a source over GraphQL", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
  });

  it("is created with its settings checked and tested with a sample; the password stays secret", async () => {
    const publisher = await stack.signup("PG Publisher", "PUBLISHER");
    const password = "not-needed-but-kept-9a8b";
    const bad = await stack.graphql(
      CreateSourceDocument,
      {
        input: {
          name: "shop db",
          type: "POSTGRES",
          config: { url: "postgres://u:pw@h/db", query: "SELECT 1" },
        },
      },
      publisher.headers,
    );
    expect(bad.errors?.[0]?.extensions?.problems).toEqual([
      "url: must not carry the password; put it in secrets.password",
    ]);

    const created = await stack.graphql(
      CreateSourceDocument,
      {
        input: {
          name: "shop db",
          type: "POSTGRES",
          config: { ...at, query: "SELECT id, name FROM events ORDER BY id", cursorColumn: "id" },
          secrets: { password },
        },
      },
      publisher.headers,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createSource.id;
    expect(decodeGlobalId(id).type).toBe("Source");
    const tested = await stack.graphql(
      TestSourceConnectionDocument,
      { id: encodeGlobalId("Source", decodeGlobalId(id).id) },
      publisher.headers,
    );
    expect(tested.data?.testSourceConnection).toMatchObject({
      ok: true,
      sampleRecords: [
        { id: "1", name: "first" },
        { id: "2", name: "O'Reilly; DROP TABLE events" },
        { id: "9007199254740993", name: "big" },
        { id: "9007199254740994", name: "new a" },
        { id: "9007199254740995", name: "new b" },
      ],
    });
    expect(JSON.stringify(tested)).not.toContain(password);
    expect(stack.logText()).not.toContain(password);
  });
});
