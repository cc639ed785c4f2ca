// The export's HTTP reader against the wire: framing taken off at any split of the reads, and a
// response cut short, refused or abandoned failing the way the rest of the code expects. The
// servers here are loopback sockets writing HTTP by hand, so every framing case can be produced;
// the reader against the real ClickHouse server runs in data-api.test.ts (every export).
import { once } from "node:events";
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ClickHouseError, toClickHouseError } from "../../src/db/clickhouse.js";
import { BodyReader, httpOutput } from "../../src/db/http-output.js";
import { unavailableStore } from "../../src/db/store-unavailable.js";

/** `payload` in chunked transfer coding, in chunks of the sizes given (cycled), an extension on some. */
function chunked(payload: Buffer, sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0, i = 0; at < payload.length; i++) {
    const size = Math.min(sizes[i % sizes.length]!, payload.length - at);
    const extension = i % 3 === 1 ? ";name=value" : "";
    parts.push(
      Buffer.from(`${size.toString(16)}${extension}\r\n`),
      payload.subarray(at, at + size),
      Buffer.from("\r\n"),
    );
    at += size;
  }
  parts.push(Buffer.from("0\r\nX-Trailer: yes\r\n\r\n"));
  return Buffer.concat(parts);
}

/** What a BodyReader makes of `wire` read in pieces of `read` bytes (each piece a buffer of its own). */
function readAll(reader: BodyReader, wire: Buffer, read: number): Buffer {
  const out: Buffer[] = [];
  for (let at = 0; at < wire.length; at += read) {
    out.push(Buffer.from(reader.take(Buffer.from(wire.subarray(at, at + read)))));
  }
  return Buffer.concat(out);
}

describe("BodyReader", () => {
  const payload = Buffer.from(
    Array.from({ length: 20_000 }, (_, i) => String.fromCharCode(32 + (i % 90))).join(""),
  );

  it("takes chunked framing off whatever the reads' sizes, leaving the payload in order", () => {
    const wire = chunked(payload, [4096, 1, 7, 300]);
    for (const read of [1, 2, 3, 5, 64, 4096, 4101, 65_536]) {
      const reader = new BodyReader({ kind: "chunked" });
      expect(readAll(reader, wire, read).equals(payload), `reads of ${read}`).toBe(true);
      expect(reader.done).toBe(true);
    }
  });

  it("is not done before the last chunk, and refuses bytes after it or a malformed size", () => {
    const wire = chunked(payload, [4096]);
    const reader = new BodyReader({ kind: "chunked" });
    reader.take(Buffer.from(wire.subarray(0, wire.length - 3)));
    expect(reader.done).toBe(false);
    reader.take(Buffer.from(wire.subarray(wire.length - 3)));
    expect(reader.done).toBe(true);
    expect(() => reader.take(Buffer.from("x"))).toThrow(/after the body's end/);
    expect(() => new BodyReader({ kind: "chunked" }).take(Buffer.from("zz\r\n"))).toThrow(/size line/);
    expect(() => new BodyReader({ kind: "chunked" }).take(Buffer.from("2\r\nabX\n"))).toThrow(/chunk's end/);
  });

  it("reads a Content-Length body to its length", () => {
    const reader = new BodyReader({ kind: "length", length: payload.length });
    expect(readAll(reader, payload, 999).equals(payload)).toBe(true);
    expect(reader.done).toBe(true);
  });
});

describe("httpOutput", () => {
  let server: Server | undefined;
  const sockets = new Set<Socket>();
  afterEach(async () => {
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    if (server) await new Promise((resolve) => server!.close(resolve));
    server = undefined;
  });

  /** A server that answers every request by calling `answer` with its socket once the request is in. */
  async function serve(answer: (socket: Socket, request: string) => void): Promise<string> {
    server = createServer((socket) => {
      sockets.add(socket);
      let request = "";
      socket.on("data", (data) => {
        request += data.toString("latin1");
        const head = request.indexOf("\r\n\r\n");
        const length = Number(/content-length: (\d+)/i.exec(request)?.[1] ?? 0);
        if (head !== -1 && request.length >= head + 4 + length) answer(socket, request);
      });
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const ask = (url: string, signal?: AbortSignal) =>
    httpOutput({
      url,
      username: "reader",
      password: "p@ss:word",
      params: { database: "dh", max_bytes_before_external_sort: "1024" },
      query: "SELECT 1 FORMAT TabSeparated",
      timeoutMs: 5_000,
      signal,
    });

  const collect = async (body: AsyncIterable<Buffer>) => {
    const parts: Buffer[] = [];
    for await (const part of body) parts.push(part);
    return Buffer.concat(parts);
  };

  it("sends the statement with its database, settings and credentials, and reads the body to the last chunk", async () => {
    const payload = Buffer.from("row\n".repeat(50_000));
    let seen = "";
    const url = await serve((socket, request) => {
      seen = request;
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n");
      socket.end(chunked(payload, [4096]));
    });
    expect((await collect(await ask(url))).equals(payload)).toBe(true);
    expect(seen).toMatch(/^POST \/\?database=dh&max_bytes_before_external_sort=1024 HTTP\/1\.1\r\n/);
    expect(seen).toContain(`Authorization: Basic ${Buffer.from("reader:p@ss:word").toString("base64")}`);
    expect(seen.endsWith("\r\n\r\nSELECT 1 FORMAT TabSeparated")).toBe(true);
  });

  it("fails when the connection ends before the last chunk: a cut-off export is an error, not a shorter one", async () => {
    const url = await serve((socket) => {
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
      const wire = chunked(Buffer.from("row\n".repeat(10_000)), [4096]);
      socket.end(wire.subarray(0, wire.length - 5));
    });
    const error = await collect(await ask(url)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/before the end of its output/);
    expect(unavailableStore(toClickHouseError(error))).toBe("ClickHouse");
  });

  it("rejects with the server's error text, which carries its code", async () => {
    const text = "Code: 62, e.displayText() = DB::Exception: Syntax error, e.what() = DB::Exception\n";
    const url = await serve((socket) => {
      socket.end(`HTTP/1.1 500 Internal Server Error\r\nContent-Length: ${text.length}\r\n\r\n${text}`);
    });
    const error = toClickHouseError(await ask(url).catch((e: unknown) => e));
    expect(error).toBeInstanceOf(ClickHouseError);
    expect(error.code).toBe(62);
    expect(error.message).toBe("Syntax error");
  });

  it("counts a refused connection as ClickHouse unavailable", async () => {
    const url = await serve(() => {});
    await new Promise((resolve) => server!.close(resolve));
    server = undefined;
    const error = toClickHouseError(await ask(url).catch((e: unknown) => e));
    expect(unavailableStore(error)).toBe("ClickHouse");
  });

  it("stops reading and closes the connection when the caller aborts", async () => {
    let closed: Promise<unknown> | undefined;
    const url = await serve((socket) => {
      closed = once(socket, "close");
      socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nrow\n\r\n");
    });
    const controller = new AbortController();
    const body = (await ask(url, controller.signal))[Symbol.asyncIterator]();
    expect((await body.next()).value?.toString()).toBe("row\n");
    const pending = body.next();
    controller.abort(new Error("client gone"));
    await expect(pending).rejects.toThrow("client gone");
    await closed;
  });
});
