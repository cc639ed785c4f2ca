// The MySQL/MariaDB source against the real MariaDB (MARIADB_URL, by default the machine's
// 127.0.0.1:3306 as root without a password): a scratch database and table made here, read in
// full and incrementally as the server streams the rows, values made JSON-friendly (BIGINT and
// DECIMAL exact, times in ISO 8601, JSON parsed), the checkpoint escaped (never spliced), a
// multi-statement query and slow queries refused, login failures told without the password.
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import { mysqlConnector } from "../../src/sources/connectors/mysql.connector.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import { CreateSourceDocument, TestSourceConnectionDocument } from "../generated/graphql.js";
import { uniqueName } from "../support/databases.js";
import { failure } from "../support/failures.js";
import { MARIADB_URL, sqlSourceHarness } from "../support/sql-sources.js";
import { startStack, type TestStack } from "../support/stack.js";

const server = MARIADB_URL;
const database = uniqueName("mysrc");
const at = {
  host: server.hostname,
  port: Number(server.port || 3306),
  database,
  user: decodeURIComponent(server.username),
};
let db: mysql.Connection;

const { context, readAll } = sqlSourceHarness(
  mysqlConnector,
  at,
  server.password ? { password: decodeURIComponent(server.password) } : {},
);

beforeAll(async () => {
  db = await mysql.createConnection({
    host: at.host,
    port: at.port,
    user: at.user,
    password: server.password ? decodeURIComponent(server.password) : undefined,
    multipleStatements: true,
  });
  await db.query(`CREATE DATABASE \`${database}\`; USE \`${database}\`; SET time_zone = '+00:00';`);
  await db.query(`
    CREATE TABLE events (
      id BIGINT PRIMARY KEY,
      name VARCHAR(200) NOT NULL,
      amount DECIMAL(20, 2),
      happened_at TIMESTAMP(6) NULL,
      local_at DATETIME,
      day DATE,
      payload JSON,
      flag BOOLEAN,
      small INT,
      raw VARBINARY(8)
    );
    INSERT INTO events VALUES
      (1, 'first', 12.50, '2026-01-01 10:00:00.123456', '2026-01-01 10:00:00', '2026-01-02', '{"a": [1, 2]}', TRUE, 7, X'00ff'),
      (2, 'O''Reilly; DROP TABLE events', 123456789012345678.99, '2026-01-01 10:00:00.123457', NULL, NULL, NULL, NULL, NULL, NULL),
      (9007199254740993, 'big', -0.01, '2026-01-01 22:00:00', NULL, '2105-12-31', '"text"', FALSE, -1, NULL);
  `);
});

afterAll(async () => {
  await db?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await db?.end();
});

describe("settings", () => {
  it("is registered for MYSQL and lists every problem, never taking a password in the URL", () => {
    expect(connectorFor("MYSQL")).toBe(mysqlConnector);
    expect(mysqlConnector.validate({ ...at, query: "SELECT 1" }, {})).toEqual([]);
    expect(
      mysqlConnector.validate({ url: "mysql://reader@db.example:3307/shop", query: "SELECT 1" }, {}),
    ).toEqual([]);
    expect(
      mysqlConnector.validate({ url: "mysql://reader:hunter2@db.example/shop", query: "SELECT 1" }, {}),
    ).toEqual(["url: must not carry the password; put it in secrets.password"]);
    expect(mysqlConnector.validate({ url: "postgres://reader@db/shop", query: "SELECT 1" }, {})).toEqual([
      "url: must be a mysql:// URL",
    ]);
    const problems = mysqlConnector.validate({ cursorColumn: "id; DROP", port: 0, password: "x" }, {});
    expect(problems.map((p) => p.split(":")[0]).sort()).toEqual(["(root)", "cursorColumn", "port", "query"]);
  });
});

describe("reading", () => {
  it("reads every row with JSON-friendly values, and the largest cursor as the checkpoint", async () => {
    const { ctx } = context({ query: "SELECT * FROM events;", cursorColumn: "id" }, { mode: "FULL_REFRESH" });
    const { rows, records, checkpoint } = await readAll(ctx);
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
        flag: 1,
        small: 7,
        raw: "\\x00ff",
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
        raw: null,
      },
      {
        id: "9007199254740993",
        name: "big",
        amount: "-0.01",
        happened_at: "2026-01-01T22:00:00.000000Z",
        local_at: null,
        day: "2105-12-31",
        payload: "text",
        flag: 0,
        small: -1,
        raw: null,
      },
    ]);
    expect(checkpoint).toBe("9007199254740993");
  });

  it("reads incrementally: after inserts, only the new rows; the checkpoint is a value, never SQL", async () => {
    const settings = { query: "SELECT id, name FROM events", cursorColumn: "id" };
    const first = await readAll(context(settings).ctx);
    expect(first.records.map((r) => r!.id)).toEqual(["1", "2", "9007199254740993"]);

    await db.query(
      `INSERT INTO events (id, name) VALUES (9007199254740994, 'new a'), (9007199254740995, 'new b')`,
    );
    const second = await readAll(context(settings, { checkpoint: first.checkpoint }).ctx);
    expect(second.records).toEqual([
      { id: "9007199254740994", name: "new a" },
      { id: "9007199254740995", name: "new b" },
    ]);
    expect(second.checkpoint).toBe("9007199254740995");
    const third = await readAll(context(settings, { checkpoint: second.checkpoint }).ctx);
    expect(third).toMatchObject({ records: [], checkpoint: "9007199254740995" });

    // Text that would widen a spliced WHERE is compared as text: nothing sorts after it.
    const byName = { query: "SELECT id, name FROM events", cursorColumn: "name" };
    const hostile = await readAll(context(byName, { checkpoint: "zzz' OR '1'='1" }).ctx);
    expect(hostile.records).toEqual([]);
  });

  it("keeps TIMESTAMP cursors exact to the microsecond", async () => {
    const settings = {
      query: "SELECT id, happened_at FROM events WHERE id < 100",
      cursorColumn: "happened_at",
    };
    const all = await readAll(context(settings).ctx);
    expect(all.checkpoint).toBe("2026-01-01T10:00:00.123457Z");
    const after = await readAll(context(settings, { checkpoint: "2026-01-01T10:00:00.123456Z" }).ctx);
    expect(after.records.map((r) => r!.id)).toEqual(["2"]);
  });

  it("streams a large result as the server sends it", async () => {
    const { ctx, debug } = context({
      query: "SELECT seq AS n, REPEAT('x', 100) AS pad FROM seq_1_to_25000",
      cursorColumn: "n",
      fetchSize: 1000,
    });
    const { rows, checkpoint } = await readAll(ctx);
    expect(rows).toHaveLength(25_000);
    expect(checkpoint).toBe("25000");
    expect(debug).toHaveLength(25);
  });

  it("samples the first rows and leaves the rest unread", async () => {
    const { ctx } = context({ query: "SELECT seq AS n FROM seq_1_to_1000000" });
    const sample = await mysqlConnector.sample(ctx, 2);
    expect(sample.records).toEqual([{ n: "1" }, { n: "2" }]);
    expect(sample.message).toBe(`Read 2 row(s) from ${at.host}:${at.port}/${database}`);
  });
});

describe("refusals", () => {
  it("refuses a second statement: the query is one SELECT, run as a subquery", async () => {
    const refused = await failure(() => readAll(context({ query: "SELECT 1; DROP TABLE events" }).ctx));
    expect(refused.code).toBe("BAD_USER_INPUT");
    expect(refused.message).toMatch(/^The source query failed: /);
    const [rows] = await db.query("SELECT COUNT(*) AS n FROM events");
    expect((rows as { n: number }[])[0]!.n).toBe(5);
  });

  it("stops a query at statementTimeoutMs", async () => {
    const slow = await failure(() =>
      readAll(context({ query: "SELECT SLEEP(5) AS s", statementTimeoutMs: 1000 }).ctx),
    );
    expect(slow.message).toMatch(/statementTimeoutMs \(1000 ms\)/);
  });

  it("says what is wrong with a bad query or database", async () => {
    const bad = await failure(() => readAll(context({ query: "SELECT nope FROM events" }).ctx));
    expect(bad.message).toMatch(/^The source query failed: Unknown column 'nope'/);
    const noDb = await failure(() =>
      readAll(context({ query: "SELECT 1", database: `${database}_none` }).ctx),
    );
    expect(noDb.message).toMatch(/Unknown database/);
  });

  it("tells a refused password clearly, without the password; an unreachable server likewise", async () => {
    const password = "wr0ng-Passw0rd-7c1e";
    const { ctx } = context({ user: "datahus_nobody", query: "SELECT 1" }, { secrets: { password } });
    const refused = await failure(() => readAll(ctx));
    expect(refused.code).toBe("BAD_USER_INPUT");
    expect(refused.message).toMatch(
      new RegExp(`^MySQL at ${at.host}:${at.port}/${database} refused the login: Access denied`),
    );
    expect(JSON.stringify({ message: refused.message, fields: refused.fields })).not.toContain(password);
    const closed = await failure(() =>
      readAll(context({ host: "127.0.0.1", port: 9, query: "SELECT 1" }).ctx),
    );
    expect(closed.code).toBe("SERVICE_UNAVAILABLE");
    expect(closed.message).toMatch(/^Could not reach MySQL at 127\.0\.0\.1:9/);
  });
});

describe("as a source over GraphQL", () => {
  let stack: TestStack;

  beforeAll(async () => {
    stack = await startStack();
  }, 60_000);

  afterAll(async () => stack?.close());

  it("is created with its settings checked and tested with a sample", async () => {
    const publisher = await stack.signup("MySQL Publisher", "PUBLISHER");
    const created = await stack.graphql(
      CreateSourceDocument,
      {
        input: {
          name: "shop db",
          type: "MYSQL",
          config: {
            ...at,
            query: "SELECT id, name FROM events WHERE id < 3 ORDER BY id",
            cursorColumn: "id",
          },
        },
      },
      publisher.headers,
    );
    expect(created.errors).toBeUndefined();
    const id = created.data!.createSource.id;
    expect(decodeGlobalId(id).type).toBe("Source");
    const tested = await stack.graphql(TestSourceConnectionDocument, { id }, publisher.headers);
    expect(tested.data?.testSourceConnection).toMatchObject({
      ok: true,
      sampleRecords: [
        { id: "1", name: "first" },
        { id: "2", name: "O'Reilly; DROP TABLE events" },
      ],
    });
  });
});
