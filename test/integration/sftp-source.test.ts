// The SFTP source and client against a real OpenSSH sshd on loopback: formats, quarantined rows,
// incremental syncs by file name/size/mtime, credentials and host keys, atomic writes.
import { gzipSync } from "node:zlib";
import { readdir } from "node:fs/promises";
import { dirname } from "node:path";
import { parquetWriteBuffer } from "hyparquet-writer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../../src/errors.js";
import { connectorFor } from "../../src/sources/connectors/registry.js";
import { SftpConnection } from "../../src/transfer/sftp.js";
import { collect, connectorContext, recordingLog } from "../support/connector-context.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

let sshd: TestSshd;
const sftp = connectorFor("SFTP")!;

beforeAll(async () => {
  sshd = await startSshd();
});
afterAll(async () => {
  await sshd?.stop();
});

const base = () => ({ host: sshd.host, port: sshd.port, username: sshd.username });
const endpoint = () => ({ ...base(), timeoutMs: 10_000 });
const okRecords = (rows: Awaited<ReturnType<typeof collect>>): Record<string, unknown>[] =>
  rows.flatMap((row) => (row.ok ? [{ ...row.record, origin: row.origin }] : []));

function parquetFile(ids: number[]): Buffer {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: "id", data: ids, type: "INT32" },
      { name: "name", data: ids.map((id) => `p${id}`), type: "STRING" },
    ],
  });
  return Buffer.from(buffer);
}

describe("SFTP source", () => {
  it("reads CSV, gzipped CSV, NDJSON and Parquet files matching the glob, quarantining a bad row", async () => {
    await sshd.put("mixed/a.csv", 'id,name\r\n1,"Smith, Jo"\r\n2,"say ""hi"""\r\n3,too,many\r\n');
    await sshd.put("mixed/b.csv.gz", gzipSync("id,name\n4,gz\n"));
    await sshd.put("mixed/c.ndjson", '{"id":5,"name":"nd"}\n{broken\n');
    await sshd.put("mixed/d.parquet", parquetFile([6, 7]));
    await sshd.put("mixed/notes.txt", "ignored: does not match");
    const dir = `${sshd.root}/mixed`;

    const rows = await collect(
      sftp.read(
        connectorContext(
          { ...base(), path: `${dir}/*.{csv,csv.gz,ndjson,parquet}` },
          { password: sshd.password },
        ),
      ),
    );

    expect(okRecords(rows)).toEqual([
      { id: "1", name: "Smith, Jo", origin: `${dir}/a.csv` },
      { id: "2", name: 'say "hi"', origin: `${dir}/a.csv` },
      { id: "4", name: "gz", origin: `${dir}/b.csv.gz` },
      { id: 5, name: "nd", origin: `${dir}/c.ndjson` },
      { id: 6, name: "p6", origin: `${dir}/d.parquet` },
      { id: 7, name: "p7", origin: `${dir}/d.parquet` },
    ]);
    const failures = rows.filter((row) => !row.ok);
    expect(failures).toEqual([
      {
        ok: false,
        rowNumber: 3,
        raw: "3,too,many",
        reasons: ["expected 2 fields, found 3: column 3 is one too many"],
        origin: `${dir}/a.csv`,
      },
      expect.objectContaining({ ok: false, rowNumber: 2, raw: "{broken", origin: `${dir}/c.ndjson` }),
    ]);
    expect((failures[1] as { reasons: string[] }).reasons[0]).toMatch(/^invalid JSON/);
  });

  it("quarantines a file that cannot be read as a whole and goes on with the next", async () => {
    await sshd.put("corrupt/1.csv.gz", Buffer.from("this is not gzip"));
    await sshd.put("corrupt/2.csv", "id\n9\n");
    const rows = await collect(
      sftp.read(
        connectorContext(
          { ...base(), path: `${sshd.root}/corrupt/*`, format: "CSV" },
          { password: sshd.password },
        ),
      ),
    );
    expect(rows).toEqual([
      expect.objectContaining({ ok: false, rowNumber: 1, origin: `${sshd.root}/corrupt/1.csv.gz` }),
      expect.objectContaining({ ok: true, record: { id: "9" }, origin: `${sshd.root}/corrupt/2.csv` }),
    ]);
  });

  it("loads only new or changed files on an incremental sync after new files arrive", async () => {
    const dir = `${sshd.root}/incoming`;
    const config = { ...base(), path: `${dir}/*.csv` };
    const secrets = { privateKey: sshd.privateKey };
    await sshd.put("incoming/day1.csv", "id,v\n1,a\n2,b\n", new Date("2026-01-01T00:00:00Z"));
    await sshd.put("incoming/day2.csv", "id,v\n3,c\n", new Date("2026-01-02T00:00:00Z"));

    const first = sftp.read(connectorContext(config, secrets, { mode: "INCREMENTAL" }));
    expect(okRecords(await collect(first)).map((r) => r.id)).toEqual(["1", "2", "3"]);
    const checkpoint = first.checkpoint();
    expect(checkpoint).toEqual({
      files: {
        [`${dir}/day1.csv`]: { size: 13, mtime: Date.parse("2026-01-01T00:00:00Z") },
        [`${dir}/day2.csv`]: { size: 9, mtime: Date.parse("2026-01-02T00:00:00Z") },
      },
    });

    // New files arrive; one old file is rewritten (new mtime); nothing else changes.
    await sshd.put("incoming/day3.csv", "id,v\n4,d\n5,e\n", new Date("2026-01-03T00:00:00Z"));
    await sshd.put("incoming/day4.csv", "id,v\n6,f\n", new Date("2026-01-04T00:00:00Z"));
    await sshd.put("incoming/day2.csv", "id,v\n3,C\n", new Date("2026-01-05T00:00:00Z"));

    const log = recordingLog();
    const second = sftp.read(
      connectorContext(config, secrets, { mode: "INCREMENTAL", checkpoint, log: log.log }),
    );
    const secondRows = okRecords(await collect(second));
    expect(secondRows.map((r) => [r.id, r.v])).toEqual([
      ["3", "C"],
      ["4", "d"],
      ["5", "e"],
      ["6", "f"],
    ]);
    expect(Object.keys((second.checkpoint() as { files: object }).files)).toHaveLength(4);
    expect(log.lines.map((line) => JSON.parse(line) as object)).toEqual([
      expect.objectContaining({ message: "Remote files listed", matching: 4, reading: 3 }),
    ]);
    expect(log.lines.join()).not.toContain("PRIVATE KEY");

    // Nothing new: an incremental sync reads nothing; a full refresh reads every file again.
    const third = sftp.read(
      connectorContext(config, secrets, { mode: "INCREMENTAL", checkpoint: second.checkpoint() }),
    );
    expect(await third.totalBytes!()).toBe(0);
    expect(await collect(third)).toEqual([]);
    const full = sftp.read(
      connectorContext(config, secrets, { mode: "FULL_REFRESH", checkpoint: second.checkpoint() }),
    );
    expect(okRecords(await collect(full))).toHaveLength(6);
  });

  it("refuses a wrong password with a clear message that does not contain it", async () => {
    const wrong = "Wr0ng-Secret-Password!";
    const error = await collect(
      sftp.read(connectorContext({ ...base(), path: `${sshd.root}/*.csv` }, { password: wrong })),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    expect((error as AppError).message).toBe(
      `SFTP login to ${sshd.username}@127.0.0.1:${sshd.port} was refused: check the username, password or private key`,
    );
    expect(
      JSON.stringify({ message: (error as AppError).message, fields: (error as AppError).fields }),
    ).not.toContain(wrong);
  });

  it("logs in with an encrypted key and its passphrase, and refuses the wrong passphrase", async () => {
    await sshd.put("keys/x.csv", "id\n1\n");
    const config = { ...base(), path: `${sshd.root}/keys/*.csv` };
    const good = { privateKey: sshd.encryptedPrivateKey, passphrase: sshd.passphrase };
    expect(okRecords(await collect(sftp.read(connectorContext(config, good))))).toHaveLength(1);
    const error = await collect(
      sftp.read(
        connectorContext(config, { privateKey: sshd.encryptedPrivateKey, passphrase: "not-it-at-all" }),
      ),
    ).catch((e: unknown) => e);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    expect((error as AppError).message).toMatch(/private key cannot be used/);
    expect((error as AppError).message).not.toContain("not-it-at-all");
  });

  it("checks the host key when a fingerprint is configured", async () => {
    await sshd.put("hk/x.csv", "id\n1\n");
    const config = { ...base(), path: `${sshd.root}/hk/*.csv` };
    const secrets = { password: sshd.password };
    const good = await collect(
      sftp.read(connectorContext({ ...config, hostKeyFingerprint: sshd.hostKeyFingerprint }, secrets)),
    );
    expect(good).toHaveLength(1);
    const other = `SHA256:${"A".repeat(43)}`;
    const error = await collect(
      sftp.read(connectorContext({ ...config, hostKeyFingerprint: other }, secrets)),
    ).catch((e: unknown) => e);
    expect((error as AppError).message).toMatch(/host key that does not match hostKeyFingerprint/);
  });

  it("names a folder that does not exist", async () => {
    const error = await collect(
      sftp.read(connectorContext({ ...base(), path: "/no/such/folder/*.csv" }, { password: sshd.password })),
    ).catch((e: unknown) => e);
    expect((error as AppError).code).toBe("BAD_USER_INPUT");
    expect((error as AppError).message).toBe(
      `SFTP listing /no/such/folder on ${sshd.username}@127.0.0.1:${sshd.port}: no such file or folder`,
    );
  });

  it("says the server cannot be reached when nothing listens", async () => {
    const error = await SftpConnection.open({ ...endpoint(), port: 1 }, { password: "x-secret" }).catch(
      (e: unknown) => e,
    );
    expect((error as AppError).code).toBe("SERVICE_UNAVAILABLE");
    expect((error as AppError).message).toBe("Cannot reach the SFTP server 127.0.0.1:1 (ECONNREFUSED)");
  });

  it("lists every problem with the settings, naming fields and never secret values", () => {
    expect(
      sftp.validate(
        { host: "sftp://x", port: 70000, path: "/in/*/x.csv", password: "p" },
        { passphrase: "zz" },
      ),
    ).toEqual([
      "host: must be a host name or IP address, without scheme or port",
      "port: Too big: expected number to be <=65535",
      "username: Invalid input: expected string, received undefined",
      '(root): Unrecognized key: "password"',
      "secrets.(root): password or privateKey is required",
      "secrets.passphrase: passphrase is only used with privateKey",
    ]);
    expect(sftp.validate({ host: "h", username: "u", path: "/in/*/x.csv" }, { password: "p" })).toEqual([
      'path: "/in/*/x.csv": wildcards are allowed in the file name only',
    ]);
    expect(sftp.validate({ host: "h", username: "u", path: "/in/*" }, { password: "p" })).toEqual([
      "format: is required when the file pattern does not end in .csv, .tsv, .json, .ndjson or .parquet",
    ]);
    expect(sftp.validate({ host: "h", username: "u", path: "/in/*.csv.gz" }, { password: "p" })).toEqual([]);
  });

  it("samples the first records of the first file", async () => {
    await sshd.put("sample/a.csv", "id\n1\n2\n3\n");
    await sshd.put("sample/b.csv", "id\n4\n");
    const sample = await sftp.sample(
      { ...connectorContext({ ...base(), path: `${sshd.root}/sample/*.csv` }, { password: sshd.password }) },
      2,
    );
    expect(sample).toEqual({
      message: `Read 2 record(s) from ${sshd.root}/sample/a.csv (2 file(s) match)`,
      records: [{ id: "1" }, { id: "2" }],
    });
  });

  it("stops reading when the run is aborted", async () => {
    await sshd.put("abort/a.csv", "id\n" + Array.from({ length: 50_000 }, (_, i) => i).join("\n"));
    const abort = new AbortController();
    const reader = sftp.read(
      connectorContext(
        { ...base(), path: `${sshd.root}/abort/*.csv` },
        { password: sshd.password },
        { signal: abort.signal },
      ),
    );
    let seen = 0;
    const error = await (async () => {
      for await (const _ of reader) if (++seen === 10) abort.abort();
    })().catch((e: unknown) => e);
    expect((error as Error).name).toBe("AbortError");
    expect(seen).toBeLessThan(50_000);
  });
});

describe("SFTP client writes", () => {
  it("writes atomically through a hidden temporary name, creating folders, and returns the checksum", async () => {
    const connection = await SftpConnection.open(endpoint(), { password: sshd.password });
    try {
      const path = `${sshd.root}/drops/a/b/file.csv`;
      const result = await connection.write(
        path,
        (async function* () {
          yield Buffer.from("id\n");
          yield Buffer.from("1\n");
        })(),
      );
      expect(result).toEqual({
        bytes: 5,
        sha256: "7cde7fb64fd82bd152710cf238e017b9ab46c0592483edc067ba4f6c75fac108",
      });
      // Overwriting an existing file works too (posix-rename replaces it).
      await connection.write(
        path,
        (async function* () {
          yield Buffer.from("id\n2\n");
        })(),
      );
      const body = await connection.read(path).toArray();
      expect(Buffer.concat(body).toString()).toBe("id\n2\n");
      expect(await readdir(dirname(path))).toEqual(["file.csv"]);
    } finally {
      await connection.close();
    }
  });
});
