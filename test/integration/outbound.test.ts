// The outbound guard against a real loopback server: connections go only to the addresses that
// were checked (a DNS answer cannot change under us), redirects come back unfollowed, and a
// receiver that never answers is cut off at the timeout.
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OutboundRefused, guardedFetch, type OutboundPolicy } from "../../src/net/outbound.js";

const loopback: OutboundPolicy = { allowPrivate: false, allowCidrs: ["127.0.0.0/8"] };
let server: Server;
let port: number;
const seen: IncomingMessage[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req);
    if (req.url === "/redirect") {
      res.writeHead(302, { location: "http://169.254.169.254/latest" }).end();
    } else if (req.url === "/silent") {
      // Never answers.
    } else {
      res.end("hello");
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

describe("guardedFetch", () => {
  it("connects to the checked address only, resolving the name once", async () => {
    const answers: string[][] = [["127.0.0.1"], ["10.0.0.1"]];
    let lookups = 0;
    const resolve = async () =>
      (answers[lookups++] ?? ["10.0.0.1"]).map((address) => ({ address, family: 4 }));
    const response = await guardedFetch(
      `http://rebind.example:${port}/pinned`,
      { method: "POST", body: "{}" },
      loopback,
      { timeoutMs: 2000, resolve },
    );
    expect(response.status).toBe(200);
    expect(await response.text()).toBe("hello");
    // The second answer (a private address) was never asked for: the connection used the first.
    expect(lookups).toBe(1);
    expect(seen.at(-1)!.headers.host).toBe(`rebind.example:${port}`);
  });

  it("refuses a name that resolves to a disallowed address without connecting", async () => {
    const before = seen.length;
    const resolve = async () => [{ address: "10.0.0.1", family: 4 }];
    await expect(
      guardedFetch(`http://internal.example:${port}/`, {}, loopback, { timeoutMs: 2000, resolve }),
    ).rejects.toBeInstanceOf(OutboundRefused);
    await expect(
      guardedFetch(
        `http://127.0.0.1:${port}/`,
        {},
        { allowPrivate: false, allowCidrs: [] },
        { timeoutMs: 2000 },
      ),
    ).rejects.toThrow("127.0.0.1 is not a public address (loopback); this server does not contact it");
    expect(seen.length).toBe(before);
  });

  it("returns a redirect instead of following it", async () => {
    const response = await guardedFetch(`http://127.0.0.1:${port}/redirect`, {}, loopback, {
      timeoutMs: 2000,
    });
    expect(response.status).toBe(302);
    expect(response.headers.get("location")).toBe("http://169.254.169.254/latest");
  });

  it("gives up on a receiver that does not answer in time", async () => {
    const started = Date.now();
    await expect(
      guardedFetch(`http://127.0.0.1:${port}/silent`, {}, loopback, { timeoutMs: 500 }),
    ).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(3000);
  });
});
