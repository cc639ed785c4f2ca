// Proves on the real server (18.16 here) that the sql template's literals mean what they say:
// every hostile value comes back byte for byte. Also covers the ClickHouse wrapper's behaviour
// that only a real server can show (error codes, errors after the first rows, timeouts).
import { lstat, mkdtemp, readdir, readlink, rm } from "node:fs/promises";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { Readable } from "node:stream";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Env } from "../../src/config.js";
import {
  ClickHouseError,
  ClickHouseErrorCode,
  createClickHouse,
  parseJsonEachRow,
  type ClickHouse,
} from "../../src/db/clickhouse.js";
import { PIPE_BATCH } from "../../src/db/named-pipes.js";
import { ident, inList, sql } from "../../src/db/sql.js";
import { readRecords } from "../../src/sources/formats/index.js";
import { baseConfig, embeddedEngine, itOnServer } from "../support/databases.js";

const config = baseConfig();

const hostileStrings: Array<[string, string]> = [
  ["empty", ""],
  ["single quote", "'"],
  ["two quotes", "''"],
  ["quote injection", "x' OR 1=1 --"],
  ["backslash", "\\"],
  ["backslash quote", "\\'"],
  ["double backslash quote", "\\\\'"],
  ["quote backslash", "'\\"],
  ["backslash-escaped injection", "\\'; DROP TABLE users; --"],
  ["backslash n (two chars)", "\\n"],
  ["backslash zero (two chars)", "\\0"],
  ["backslash x (four chars)", "\\x41"],
  ["NUL", "\0"],
  ["NUL inside", "a\0b\0"],
  ["newline", "line1\nline2"],
  ["CRLF", "a\r\nb"],
  ["tab, backspace, form feed", "\t\b\f"],
  ["all C0 controls and DEL", Array.from({ length: 32 }, (_, i) => String.fromCharCode(i)).join("") + "\x7f"],
  ["comment dash", "-- comment"],
  ["semicolon", "1; SELECT 2"],
  ["block comment", "/* x */"],
  ["unclosed block comment", "/*"],
  ["backticks", "`t`"],
  ["double quotes", '"x"'],
  ["braces (parameter syntax)", "{x:UInt8}"],
  ["question mark and dollar", "? $1 :name"],
  ["emoji", "😀👍🏽🏳️‍🌈"],
  ["CJK", "数据仓库、データ"],
  ["RTL and combining", "שלום é"],
  ["4-byte and BOM", "\uFEFF𝄞"],
  ["C1 control and NBSP", "\u0085\u00a0"],
  ["long", "'\\".repeat(5000)],
];

function hex(value: string): string {
  return Buffer.from(value, "utf8").toString("hex").toUpperCase();
}

describe("sql template on the real ClickHouse", () => {
  let ch: ClickHouse;

  beforeAll(() => {
    ch = createClickHouse(config, { database: "default" });
  });

  afterAll(async () => {
    await ch.close();
  });

  it.each(hostileStrings)("round-trips a string: %s", async (_name, value) => {
    const rows = await ch.query<{ v: string; h: string; n: string }>(
      sql`SELECT ${value} AS v, hex(${value}) AS h, length(${value}) AS n`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]!.h).toBe(hex(value));
    expect(rows[0]!.v).toBe(value);
    expect(Number(rows[0]!.n)).toBe(Buffer.byteLength(value, "utf8"));
  });

  it("compares hostile strings as values, not as SQL", async () => {
    const rows = await ch.query<{ hit: number }>(
      sql`SELECT count() AS hit FROM system.one WHERE ${"x' OR 1=1 --"} = 'x'`,
    );
    expect(Number(rows[0]!.hit)).toBe(0);
  });

  it("round-trips numbers", async () => {
    const values = [0, 1, -1, 42, -7.5, 0.1, 0.30000000000000004, 1e-7, 1.5e300, -1e21, 2 ** 53];
    for (const value of values) {
      const rows = await ch.query<{ v: number | string }>(sql`SELECT ${value} AS v`);
      expect(Number(rows[0]!.v), String(value)).toBe(value);
    }
  });

  it("keeps `1-${-1}` arithmetic, not a comment", async () => {
    const rows = await ch.query<{ v: number }>(sql`SELECT 1-${-1} AS v`);
    expect(Number(rows[0]!.v)).toBe(2);
  });

  it("round-trips 64-bit bigints exactly", async () => {
    for (const value of [18446744073709551615n, -9223372036854775808n, 9007199254740993n]) {
      const rows = await ch.query<{ v: string }>(sql`SELECT toString(${value}) AS v`);
      expect(rows[0]!.v).toBe(value.toString());
    }
  });

  it("renders booleans, NULL, dates and arrays the server understands", async () => {
    const when = new Date("2024-02-29T23:59:58.750Z");
    const rows = await ch.query<{
      t: number;
      f: number;
      n: null;
      d: number;
      a: string[];
      nested: number[][];
    }>(
      sql`SELECT ${true} AS t, ${false} AS f, ${null} AS n, toUnixTimestamp(${when}) AS d,
                 ${["a'", "b\\", "c\n"]} AS a, ${[[1, -2], [3]]} AS nested`,
    );
    expect(rows[0]).toEqual({
      t: 1,
      f: 0,
      n: null,
      d: Math.floor(when.getTime() / 1000),
      a: ["a'", "b\\", "c\n"],
      nested: [[1, -2], [3]],
    });
  });

  it("matches IN lists", async () => {
    const words = ["a", "b\\'", "c'", "d"];
    const rows = await ch.query<{ s: string }>(
      sql`SELECT s FROM (SELECT arrayJoin(${words}) AS s)
          WHERE s IN ${inList(["b\\'", "c'", "zz"])} ORDER BY s`,
    );
    expect(rows.map((r) => r.s)).toEqual(["b\\'", "c'"]);
  });

  it("quotes identifiers the server accepts", async () => {
    const rows = await ch.query<{ v: number }>(
      sql`SELECT dummy AS ${ident("v")} FROM ${ident("system", "one")}`,
    );
    expect(rows).toEqual([{ v: 0 }]);
  });
});

describe("ClickHouse wrapper", () => {
  let ch: ClickHouse;

  beforeAll(() => {
    ch = createClickHouse(config, { database: "default" });
  });

  afterAll(async () => {
    await ch.close();
  });

  it("pings", async () => {
    expect(await ch.ping()).toBe(true);
  });

  it("applies a statement's settings to that statement only", async () => {
    const threads = async (settings?: Record<string, string | number>) =>
      (
        await ch.query<{ t: string }>(
          sql`SELECT value AS t FROM system.settings WHERE name = 'max_threads'`,
          settings,
        )
      )[0]!.t;
    const normal = await threads();
    expect(await threads({ max_threads: 1 })).toMatch(/^(1|'?auto\(1\)'?)$/);
    expect(await threads()).toBe(normal);
    // Settings of a command, and of a statement that fails, stay with it too.
    await ch.command(sql`SELECT 1`, { max_threads: 1 });
    expect(await threads()).toBe(normal);
    await expect(ch.command(sql`SELEC 1`, { max_threads: 1 })).rejects.toThrow(ClickHouseError);
    expect(await threads()).toBe(normal);
  });

  it("translates server errors with their code", async () => {
    const error = await ch.command(sql`SELEC 1`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).code).toBe(ClickHouseErrorCode.SYNTAX_ERROR);
    expect((error as ClickHouseError).message).toMatch(/Syntax error/);
    expect((error as ClickHouseError).cause).toBeInstanceOf(Error);
  });

  it("reports an unknown table with its code", async () => {
    const error = await ch.query(sql`SELECT * FROM ${ident("no_such_table_x")}`).catch((e: unknown) => e);
    expect((error as ClickHouseError).code).toBe(ClickHouseErrorCode.UNKNOWN_TABLE);
  });

  it("reports an error raised after rows were produced, rather than half a result", async () => {
    const error = await ch
      .query(sql`SELECT number, throwIf(number = 300000) AS x FROM system.numbers LIMIT 400000`)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).code).toBe(395); // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
  });

  // chDB 3.4 hands what a failed statement had written to the next statement on its connection
  // (src/db/chdb-guard.ts).
  it("answers each statement with its own rows after one fails mid-output, even one sent meanwhile", async () => {
    const failing = ch.query(
      sql`SELECT number, throwIf(number = 300000) AS x FROM system.numbers LIMIT 400000`,
    );
    const meanwhile = ch.query<{ one: number }>(sql`SELECT 1 AS one`);
    await expect(failing).rejects.toThrow(ClickHouseError);
    expect(await meanwhile).toEqual([{ one: 1 }]);
    expect(await ch.query(sql`SELECT 2 AS two`)).toEqual([{ two: 2 }]);
  });

  it("treats text after the rows as the server's error (how 18.16 reports late failures)", () => {
    const body =
      '{"n":"1"}\n{"n":"2"}\nCode: 395, e.displayText() = DB::Exception: Value passed to \'throwIf\' function is non zero, e.what() = DB::Exception\n';
    expect(() => parseJsonEachRow(body)).toThrow(ClickHouseError);
    try {
      parseJsonEachRow(body);
    } catch (error) {
      expect((error as ClickHouseError).code).toBe(395);
      expect((error as ClickHouseError).message).toBe("Value passed to 'throwIf' function is non zero");
    }
    expect(parseJsonEachRow('{"n":"1"}\n\n{"n":"2"}\n')).toEqual([{ n: "1" }, { n: "2" }]);
    expect(parseJsonEachRow("")).toEqual([]);
  });

  // A server checks the connection's database on every request; the embedded engine has none
  // (statements name their database).
  itOnServer("reports a missing database with its code", async () => {
    const missing = createClickHouse(config, { database: "no_such_database_x" });
    try {
      const error = await missing.query(sql`SELECT 1 AS x`).catch((e: unknown) => e);
      expect((error as ClickHouseError).code).toBe(ClickHouseErrorCode.UNKNOWN_DATABASE);
    } finally {
      await missing.close();
    }
  });

  /** Statements still running whose text holds `marker`. */
  const running = async (marker: string) =>
    (
      await ch.query<{ n: string }>(
        sql`SELECT toString(count()) AS n FROM system.processes WHERE query LIKE ${`%${marker}%`} AND query NOT LIKE '%system.processes%'`,
      )
    )[0]!.n;

  // A server answers only once the statement writes: closing the connection before then would
  // reach a statement still computing only at its first write (ClickHouse.output kills it by id).
  itOnServer("stops a statement whose signal aborts before its first byte", async () => {
    const marker = `aborted_early_${Date.now()}`;
    const controller = new AbortController();
    // About 100 s of summing before its one row.
    const out = ch.output(
      sql`SELECT sum(number), ${marker} AS m FROM numbers(100000000000) FORMAT TabSeparated`,
      {},
      controller.signal,
    );
    out.catch(() => undefined);
    try {
      await expect.poll(() => running(marker)).toBe("1");
      controller.abort(new Error("refused"));
      await expect(out).rejects.toThrow("refused");
      await expect.poll(() => running(marker), { timeout: 3_000 }).toBe("0");
    } finally {
      await ch.command(
        sql`KILL QUERY WHERE query LIKE ${`%${marker}%`} AND query NOT LIKE '%KILL QUERY%' ASYNC`,
      );
    }
  });

  /** Files this process holds open under `dir` that are deleted (Linux: /proc/self/fd). */
  async function openDeletedUnder(dir: string): Promise<string[]> {
    const links = await Promise.all(
      (await readdir("/proc/self/fd")).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => "")),
    );
    return links.filter((link) => link.startsWith(dir) && link.endsWith(" (deleted)"));
  }

  // An export whose client left before its first byte returns the output without reading it.
  it.skipIf(!embeddedEngine)("stops a streamed output that is returned before it is read", async () => {
    const marker = `never_read_${Date.now()}`;
    const out = await ch.output(
      sql`SELECT number, ${marker} AS m FROM system.numbers LIMIT 10000000000 FORMAT TabSeparated`,
    );
    expect(await running(marker)).toBe("1");
    await out[Symbol.asyncIterator]().return?.();
    await expect.poll(() => running(marker)).toBe("0");
  });

  // The embedded engine writes every output into a named pipe read as it comes; a server streams it
  // over HTTP (18.16 has no Parquet).
  describe.skipIf(!embeddedEngine)("output through a named pipe (embedded engine)", () => {
    let tmp: string;
    let local: ClickHouse;
    const parquet = sql`SELECT number AS n, toString(cityHash64(number)) AS h FROM system.numbers LIMIT 100000 FORMAT Parquet`;
    /** The named pipes under `dir`, at any depth. */
    const pipesUnder = async (dir: string) => {
      const names = await readdir(dir, { recursive: true });
      const fifo = await Promise.all(names.map(async (n) => (await lstat(join(dir, n))).isFIFO()));
      return names.filter((_, i) => fifo[i]);
    };
    /** Runs `use` and checks that it used up one pipe made ahead and left no other trace. */
    const usesOnePipe = async (use: () => Promise<void>) => {
      const before = await pipesUnder(tmp);
      await use();
      const after = await pipesUnder(tmp);
      expect(after).toHaveLength(before.length > 0 ? before.length - 1 : PIPE_BATCH - 1);
      if (before.length > 0) expect(before).toEqual(expect.arrayContaining(after));
      await expect.poll(() => openDeletedUnder(tmp)).toEqual([]);
    };

    beforeAll(async () => {
      tmp = await mkdtemp(join(tmpdir(), "datahus-output-test-"));
      local = createClickHouse(config, { database: "default", outputDir: tmp });
    });

    afterAll(async () => {
      await local.close();
      await rm(tmp, { recursive: true, force: true });
    });

    it("reads the whole output in pieces, byte for byte the engine's, and leaves nothing behind", async () => {
      const chunks: Buffer[] = [];
      await usesOnePipe(async () => {
        for await (const chunk of await local.output(parquet)) {
          // While it is read, the pipe is open (here, and by the engine while it writes) and
          // already gone from its folder.
          if (chunks.length === 0) expect((await openDeletedUnder(tmp)).length).toBeGreaterThan(0);
          chunks.push(chunk);
        }
      });
      expect(chunks.length).toBeGreaterThan(1);
      let expected = 0;
      for await (const row of readRecords(Readable.from(chunks), { format: "PARQUET" })) {
        if (!row.ok) throw new Error(row.reasons.join("; "));
        expect(row.record).toEqual({ n: String(expected), h: expect.any(String) });
        expected++;
      }
      expect(expected).toBe(100_000);
      // A text format's bytes are the engine's own output of the statement, whole.
      const tsv = sql`SELECT number, toString(cityHash64(number)) FROM system.numbers LIMIT 200000 FORMAT TabSeparated`;
      const piped: Buffer[] = [];
      await usesOnePipe(async () => {
        for await (const chunk of await local.output(tsv)) piped.push(chunk);
      });
      const whole = await (await local.client.exec({ query: tsv.text })).stream;
      const direct: Buffer[] = [];
      for await (const chunk of whole) direct.push(Buffer.from(chunk as Uint8Array));
      expect(Buffer.concat(piped).equals(Buffer.concat(direct))).toBe(true);
    });

    it("stops the statement when the reader stops early or its signal aborts", async () => {
      const marker = `stopped_early_${Date.now()}`;
      const endless = sql`SELECT number, ${marker} AS m FROM system.numbers LIMIT 10000000000 FORMAT TabSeparated`;
      await usesOnePipe(async () => {
        for await (const _ of await local.output(endless)) break;
      });
      await expect.poll(() => running(marker)).toBe("0");

      const controller = new AbortController();
      await usesOnePipe(async () => {
        const out = await local.output(endless, {}, controller.signal);
        const reading = (async () => {
          for await (const _ of out) controller.abort(new Error("client gone"));
        })();
        await expect(reading).rejects.toThrow("client gone");
        await expect.poll(() => running(marker)).toBe("0");
      });
    });

    it("rejects a statement that fails before its first byte, and throws one that fails after", async () => {
      const failing = sql`SELECT throwIf(number = 5) AS x FROM system.numbers LIMIT 10 FORMAT Parquet`;
      await usesOnePipe(async () => {
        await expect(local.output(failing)).rejects.toThrow(ClickHouseError);
      });

      const late = sql`SELECT number, throwIf(number = 3000000) AS x FROM system.numbers LIMIT 4000000 FORMAT TabSeparated`;
      let bytes = 0;
      await usesOnePipe(async () => {
        const error = await (async () => {
          for await (const chunk of await local.output(late)) bytes += chunk.length;
        })().catch((e: unknown) => e);
        expect(error).toBeInstanceOf(ClickHouseError);
        expect((error as ClickHouseError).code).toBe(395);
      });
      expect(bytes).toBeGreaterThan(0);
      // The connection it ran on is its own: the next statement has its own rows.
      expect(await local.query(sql`SELECT 2 AS two`)).toEqual([{ two: 2 }]);
    });

    it("makes pipes a batch at a time, uses each once, and removes those left when closed", async () => {
      const own = await mkdtemp(join(tmpdir(), "datahus-output-test-"));
      const other = createClickHouse(config, { database: "default", outputDir: own });
      try {
        // One more export than a batch holds: the first and the last make a batch.
        for (let i = 0; i <= PIPE_BATCH; i++) {
          const before = await pipesUnder(own);
          for await (const _ of await other.output(sql`SELECT 1 FORMAT TabSeparated`));
          const after = await pipesUnder(own);
          expect(after).toHaveLength(before.length > 0 ? before.length - 1 : PIPE_BATCH - 1);
          if (before.length > 0) expect(before).toEqual(expect.arrayContaining(after));
        }
      } finally {
        await other.close();
      }
      expect(await readdir(own)).toEqual([]);
      await rm(own, { recursive: true, force: true });
    });
  });

  it("rejects invalid database and table names before sending anything", async () => {
    expect(() => createClickHouse(config, { database: "bad-name" })).toThrow(TypeError);
    await expect(ch.insert("t; DROP TABLE x", [{ a: 1 }])).rejects.toThrow(TypeError);
    await expect(ch.insert("a.b.c", [{ a: 1 }])).rejects.toThrow(TypeError);
  });
});

describe("ClickHouse wrapper when the server is unreachable", () => {
  let silent: Server;
  const sockets = new Set<Socket>();
  let silentPort: number;
  let closedPort: number;

  const listen = (server: Server) =>
    new Promise<number>((resolve) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        resolve(typeof address === "object" && address ? address.port : 0);
      });
    });

  const at = (port: number, extra: Env = {}) =>
    createClickHouse(baseConfig({ CLICKHOUSE_URL: `http://127.0.0.1:${port}`, ...extra }), {
      database: "default",
    });

  beforeAll(async () => {
    // Accepts connections and never answers: a hung server.
    silent = createServer((socket) => sockets.add(socket));
    silentPort = await listen(silent);
    const probe = createServer();
    closedPort = await listen(probe);
    await new Promise((resolve) => probe.close(resolve));
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it("ping answers false on a closed port", async () => {
    const ch = at(closedPort);
    expect(await ch.ping()).toBe(false);
    await ch.close();
  });

  it("ping answers false within its timeout when the server hangs", async () => {
    const ch = at(silentPort);
    const started = Date.now();
    expect(await ch.ping(300)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
    await ch.close();
  });

  it("queries fail with a ClickHouseError without a server code", async () => {
    const ch = at(closedPort);
    const error = await ch.query(sql`SELECT 1`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClickHouseError);
    expect((error as ClickHouseError).code).toBeUndefined();
    expect((error as ClickHouseError).message).toMatch(/ECONNREFUSED/);
    await ch.close();
  });

  it("queries time out after CLICKHOUSE_REQUEST_TIMEOUT_MS", async () => {
    const ch = at(silentPort, { CLICKHOUSE_REQUEST_TIMEOUT_MS: 300 });
    const started = Date.now();
    const error = await ch.query(sql`SELECT 1`).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClickHouseError);
    expect(Date.now() - started).toBeLessThan(5_000);
    await ch.close();
  });
});
