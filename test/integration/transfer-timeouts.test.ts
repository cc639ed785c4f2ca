// Servers that accept a connection and then say nothing: the SFTP and S3 clients give up after
// their timeout with SERVICE_UNAVAILABLE instead of holding a worker forever.
import { createServer, type Server, type Socket } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { S3Connection } from "../../src/transfer/s3.js";
import { SftpConnection } from "../../src/transfer/sftp.js";

let silent: Server;
let port: number;
const sockets = new Set<Socket>();

beforeAll(async () => {
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  port = (silent.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

it("gives up on a silent SFTP server after timeoutMs", async () => {
  const started = Date.now();
  const error = await SftpConnection.open(
    { host: "127.0.0.1", port, username: "u", timeoutMs: 1_000 },
    { password: "pw-never-shown" },
  ).catch((e: unknown) => e);
  const elapsed = Date.now() - started;
  expect(error).toBeInstanceOf(AppError);
  expect((error as AppError).code).toBe("SERVICE_UNAVAILABLE");
  expect((error as AppError).message).not.toContain("pw-never-shown");
  expect(elapsed).toBeGreaterThanOrEqual(900);
  expect(elapsed).toBeLessThan(5_000);
});

it("gives up on a silent S3 endpoint after its timeout and retries", async () => {
  const connection = new S3Connection(
    {
      endpoint: `http://127.0.0.1:${port}`,
      region: "us-east-1",
      bucket: "abc",
      forcePathStyle: true,
      timeoutMs: 1_000,
    },
    { accessKeyId: "k", secretAccessKey: "secret-never-shown" },
  );
  const started = Date.now();
  const error = await connection.list("").catch((e: unknown) => e);
  const elapsed = Date.now() - started;
  await connection.close();
  expect((error as AppError).code).toBe("SERVICE_UNAVAILABLE");
  expect((error as AppError).message).toMatch(/^Cannot complete S3 listing \/ in s3:\/\/abc/);
  expect((error as AppError).message).not.toContain("secret-never-shown");
  expect(elapsed).toBeLessThan(15_000);
});

it("stops waiting on a silent server as soon as the signal aborts", async () => {
  const abort = new AbortController();
  setTimeout(() => abort.abort(), 200);
  const started = Date.now();
  const error = await SftpConnection.open(
    { host: "127.0.0.1", port, username: "u", timeoutMs: 30_000 },
    { password: "x" },
    { signal: abort.signal },
  ).catch((e: unknown) => e);
  expect((error as Error).name).toBe("AbortError");
  expect(Date.now() - started).toBeLessThan(2_000);
});
