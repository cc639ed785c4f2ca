// A statement's output from a ClickHouse server, read straight off the socket: what an export
// relays. Node's HTTP client hands a response body on as one event per HTTP chunk, and
// ClickHouse writes its output in 4 KiB chunks: relaying a 160 MB export took ~42,000 events, each
// through the stream machinery, and twice the CPU of reading the socket itself (measured on 18.16).
// Here the body comes as the socket reads it (up to 64 KiB at a time) with the chunk framing taken
// off in place; the end of the body is the framing's last chunk, so a connection lost early is an
// error, never a shorter export. One connection per statement, closed after it.
import { isIP, Socket, connect as tcpConnect } from "node:net";
import { connect as tlsConnect } from "node:tls";

export interface HttpOutputRequest {
  /** The server's URL (http or https), as CLICKHOUSE_URL names it. */
  url: string;
  username: string;
  password: string;
  /** URL parameters: the database and settings. */
  params: Record<string, string>;
  /** The statement, with its FORMAT. */
  query: string;
  /** Idle time after which the request fails, as the client's request_timeout. */
  timeoutMs: number;
  signal?: AbortSignal | undefined;
  userAgent?: string | undefined;
}

/** The most of a response head, or of an error's body, read before giving up on it. */
const HEAD_LIMIT = 64 * 1024;

/** A failure on the wire; `code` as Node's network errors have it, so outages are recognised. */
function wireError(message: string, code = "ECONNRESET"): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Sends the statement and resolves once the server has answered with its status: with the body's
 * bytes as they come, or rejected with the server's error text (an error status) or the network's.
 */
export async function httpOutput(request: HttpOutputRequest): Promise<AsyncIterable<Buffer>> {
  const url = new URL(request.url);
  const search = new URLSearchParams(request.params).toString();
  const path = `${url.pathname || "/"}${search ? `?${search}` : ""}`;
  const body = Buffer.from(request.query, "utf8");
  const auth = Buffer.from(`${request.username}:${request.password}`).toString("base64");
  const head =
    `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Basic ${auth}\r\n` +
    `User-Agent: ${request.userAgent ?? "datahus"}\r\nContent-Type: text/plain; charset=UTF-8\r\n` +
    `Content-Length: ${body.length}\r\nConnection: close\r\n\r\n`;

  request.signal?.throwIfAborted();
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  const host = url.hostname.replace(/^\[|\]$/g, "");
  const socket: Socket =
    url.protocol === "https:"
      ? // SNI names a host, never an address (RFC 6066 §3).
        tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }) })
      : tcpConnect({ host, port });
  const abort = () => socket.destroy(request.signal!.reason as Error);
  request.signal?.addEventListener("abort", abort, { once: true });
  socket.setNoDelay(true);
  socket.setTimeout(request.timeoutMs, () =>
    socket.destroy(wireError(`ClickHouse sent nothing for ${request.timeoutMs} ms`, "ETIMEDOUT")),
  );
  socket.write(head);
  socket.write(body);

  const reads = socket[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const close = () => {
    request.signal?.removeEventListener("abort", abort);
    socket.destroy();
  };
  try {
    const response = await readHead(reads);
    if (response.status !== 200) {
      const text = await readWhole(reads, response.rest, response.framing);
      throw new Error(text.trim() || `ClickHouse answered HTTP ${response.status}`);
    }
    return bodyOf(reads, response.rest, response.framing, close);
  } catch (error) {
    close();
    throw error;
  }
}

type Framing = { kind: "chunked" } | { kind: "length"; length: number } | { kind: "close" };

interface ResponseHead {
  status: number;
  framing: Framing;
  /** What the read that ended the head held after it. */
  rest: Buffer;
}

async function readHead(reads: AsyncIterator<Buffer>): Promise<ResponseHead> {
  let data: Buffer = Buffer.alloc(0);
  for (;;) {
    const end = data.indexOf("\r\n\r\n");
    if (end !== -1) return parseHead(data.toString("latin1", 0, end), data.subarray(end + 4));
    if (data.length > HEAD_LIMIT) throw wireError("ClickHouse's response head is too long", "EPROTO");
    const next = await reads.next();
    if (next.done) throw wireError("ClickHouse closed the connection before answering");
    data = data.length ? Buffer.concat([data, next.value]) : next.value;
  }
}

function parseHead(text: string, rest: Buffer): ResponseHead {
  const [statusLine = "", ...lines] = text.split("\r\n");
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  if (!Number.isInteger(status))
    throw wireError(`Not an HTTP response: ${statusLine.slice(0, 80)}`, "EPROTO");
  const headers = new Map<string, string>();
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const length = headers.get("content-length");
  const framing: Framing = /chunked/i.test(headers.get("transfer-encoding") ?? "")
    ? { kind: "chunked" }
    : length !== undefined
      ? { kind: "length", length: Number(length) }
      : { kind: "close" };
  return { status, framing, rest };
}

/** The payload of each read, framing removed, as one buffer (the read's own, compacted in place). */
async function* bodyOf(
  reads: AsyncIterator<Buffer>,
  first: Buffer,
  framing: Framing,
  close: () => void,
): AsyncGenerator<Buffer> {
  try {
    const body = new BodyReader(framing);
    let data = first;
    for (;;) {
      const payload = body.take(data);
      if (payload.length) yield payload;
      if (body.done) return;
      const next = await reads.next();
      if (next.done) {
        if (framing.kind === "close") return;
        throw wireError("ClickHouse closed the connection before the end of its output");
      }
      data = next.value;
    }
  } finally {
    close();
  }
}

async function readWhole(reads: AsyncIterator<Buffer>, first: Buffer, framing: Framing): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  const close = () => {};
  for await (const part of bodyOf(reads, first, framing, close)) {
    parts.push(part);
    size += part.length;
    if (size > HEAD_LIMIT) break;
  }
  return Buffer.concat(parts).toString("utf8");
}

/**
 * Takes a response body's framing off, read by read: chunked transfer coding (RFC 9112 §7.1), a
 * Content-Length, or the connection's end.
 */
export class BodyReader {
  #state: "size" | "data" | "cr" | "lf" | "trailer" | "done";
  #line = "";
  /** Payload bytes of the current chunk (or of the whole body) still to come. */
  #left: number;

  constructor(private readonly framing: Framing) {
    this.#state = framing.kind === "chunked" ? "size" : "data";
    this.#left = framing.kind === "length" ? framing.length : framing.kind === "close" ? Infinity : 0;
    if (this.#left === 0 && framing.kind === "length") this.#state = "done";
  }

  get done(): boolean {
    return this.#state === "done";
  }

  /**
   * The payload in `data`, moved to its front in place: `data` is the socket's read, which nothing
   * else holds, so taking the framing off costs neither a copy of the read nor a new buffer (an
   * allocation per read made the API collect garbage every 64 MB relayed).
   */
  take(data: Buffer): Buffer {
    let at = 0;
    let out = 0;
    while (at < data.length) {
      switch (this.#state) {
        case "data": {
          const n = Math.min(this.#left, data.length - at);
          if (out !== at) data.copyWithin(out, at, at + n);
          at += n;
          out += n;
          this.#left -= n;
          if (this.#left === 0) this.#state = this.framing.kind === "chunked" ? "cr" : "done";
          break;
        }
        case "cr":
        case "lf": {
          if (data[at] !== (this.#state === "cr" ? 13 : 10)) throw malformed("a chunk's end");
          at++;
          this.#state = this.#state === "cr" ? "lf" : "size";
          break;
        }
        case "size":
        case "trailer": {
          const end = data.indexOf(10, at);
          this.#line += data.toString("latin1", at, end === -1 ? data.length : end);
          at = end === -1 ? data.length : end + 1;
          if (this.#line.length > 4096) throw malformed("a chunk's size line");
          if (end === -1) break;
          const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
          this.#line = "";
          if (this.#state === "trailer") {
            if (line === "") this.#state = "done";
            break;
          }
          const size = /^([0-9a-fA-F]{1,12})(;.*)?$/.exec(line)?.[1];
          if (size === undefined) throw malformed("a chunk's size line");
          this.#left = Number.parseInt(size, 16);
          this.#state = this.#left === 0 ? "trailer" : "data";
          break;
        }
        case "done":
          throw malformed("bytes after the body's end");
      }
    }
    return data.subarray(0, out);
  }
}

function malformed(what: string): Error {
  return wireError(`ClickHouse's response is not well-formed HTTP: ${what}`, "EPROTO");
}
