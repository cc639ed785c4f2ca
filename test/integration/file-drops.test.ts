// File drops against the real sshd and s3rver: records staged into CSV/NDJSON/Parquet part files,
// uploaded, manifest last. A buyer's check is replayed: list the drop, read every file back,
// compare sizes, SHA-256 and row counts with the manifest, and parse the rows.
import { createHash } from "node:crypto";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { asyncBufferFromFile, parquetReadObjects } from "hyparquet";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Column } from "../../src/catalog/columns.js";
import { AppError } from "../../src/errors.js";
import {
  dropFiles,
  dropFolder,
  probeDropTarget,
  stageDrop,
  validateDropTarget,
  type DropManifest,
  type DropTarget,
} from "../../src/deliveries/drops/index.js";
import { readRecords } from "../../src/sources/formats/index.js";
import { SftpConnection } from "../../src/transfer/sftp.js";
import { readS3Folder, startS3, type TestS3 } from "../support/s3.js";
import { startSshd, type TestSshd } from "../support/sshd.js";

let sshd: TestSshd;
let s3: TestS3;

beforeAll(async () => {
  [sshd, s3] = await Promise.all([startSshd(), startS3(["drops"])]);
});
afterAll(async () => {
  await Promise.all([sshd?.stop(), s3?.stop()]);
});

const columns: Column[] = [
  { name: "id", type: "INT64", nullable: false },
  { name: "name", type: "STRING", nullable: false },
  { name: "price", type: "DECIMAL", precision: 12, scale: 2, nullable: false },
  { name: "qty", type: "INT32", nullable: false },
  { name: "active", type: "BOOLEAN", nullable: false },
  { name: "day", type: "DATE", nullable: false },
  { name: "seen_at", type: "DATETIME", nullable: true },
  { name: "score", type: "FLOAT64", nullable: true },
];

/** Records as the records API returns them (JSON representation: INT64/DECIMAL as strings). */
function record(i: number): Record<string, unknown> {
  const names = ["plain", "comma, inside", 'quote "q"', "line\nbreak", "ünïcödé ✓", ""];
  return {
    id: String(9_007_199_254_740_993n + BigInt(i)), // past 2^53: must survive exactly
    name: `${names[i % names.length]}#${i}`,
    price: `${i}.${String(i % 100).padStart(2, "0")}`,
    qty: i % 1000,
    active: i % 2 === 0,
    day: `2026-01-${String((i % 28) + 1).padStart(2, "0")}`,
    seen_at:
      i % 5 === 0 ? null : new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString().replace(".000Z", "Z"),
    score: i % 7 === 0 ? null : i / 8,
  };
}

async function* records(count: number) {
  for (let i = 0; i < count; i++) yield record(i);
}

const sha256 = (bytes: Buffer) => createHash("sha256").update(bytes).digest("hex");

function sftpTarget(folder: string, secrets: { password?: string; privateKey?: string } = {}): DropTarget {
  return {
    type: "SFTP",
    config: { host: sshd.host, port: sshd.port, username: sshd.username, folder, timeoutMs: 10_000 },
    secrets: secrets.password ? secrets : { privateKey: sshd.privateKey },
  };
}

function s3Target(prefix: string, bucket = "drops"): DropTarget {
  return {
    type: "S3",
    config: {
      endpoint: s3.endpoint,
      region: s3.region,
      bucket,
      prefix,
      forcePathStyle: true,
      timeoutMs: 10_000,
    },
    secrets: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
  };
}

/** Checks each listed file against the manifest, as a buyer would; returns the files' bytes. */
function verifyAgainstManifest(manifest: DropManifest, files: Map<string, Buffer>): Buffer[] {
  expect([...files.keys()].sort()).toEqual([...manifest.files.map((f) => f.name), "manifest.json"].sort());
  return manifest.files.map((entry) => {
    const bytes = files.get(entry.name)!;
    expect(bytes.length).toBe(entry.size);
    expect(sha256(bytes)).toBe(entry.sha256);
    return bytes;
  });
}

async function parse(bytes: Buffer, format: "CSV" | "NDJSON", gzip: boolean) {
  const rows: Record<string, unknown>[] = [];
  for await (const row of readRecords(Readable.from([bytes]), { format, gzip })) {
    if (!row.ok) throw new Error(`unreadable row ${row.rowNumber}: ${row.reasons.join()}`);
    rows.push(row.record);
  }
  return rows;
}

describe("file drops", () => {
  it("lands a gzipped CSV drop in parts on SFTP, manifest last, with checksums and counts that match", async () => {
    const createdAt = new Date("2026-11-30T23:58:33.123Z");
    const staged = await stageDrop(
      {
        dataset: { id: "ds-1", slug: "prices" },
        version: 7,
        format: "CSV",
        gzip: true,
        columns,
        mode: "FULL",
        createdAt,
      },
      records(2_500),
      { maxRowsPerFile: 1_000 },
    );
    try {
      expect(staged.files.map((f) => [f.name, f.rowCount])).toEqual([
        ["part-00000.csv.gz", 1000],
        ["part-00001.csv.gz", 1000],
        ["part-00002.csv.gz", 500],
      ]);
      const receipt = await dropFiles(sftpTarget(`${sshd.root}/outgoing`), staged);
      expect(receipt.folder).toBe("prices/20261130T235833.123Z-v7");
      expect(receipt.manifestLocation).toBe(
        `sftp://127.0.0.1:${sshd.port}${sshd.root}/outgoing/prices/20261130T235833.123Z-v7/manifest.json`,
      );

      // The buyer's side: read the folder over SFTP with the password login.
      const buyer = await SftpConnection.open(
        { host: sshd.host, port: sshd.port, username: sshd.username, timeoutMs: 10_000 },
        { password: sshd.password },
      );
      const dir = `${sshd.root}/outgoing/${receipt.folder}`;
      const files = new Map<string, Buffer>();
      try {
        for (const file of await buyer.list(`${dir}/*`)) {
          files.set(file.name, Buffer.concat(await buyer.read(file.path).toArray()));
        }
      } finally {
        await buyer.close();
      }
      const manifest = JSON.parse(files.get("manifest.json")!.toString()) as DropManifest;
      expect(manifest).toEqual({
        manifestVersion: 1,
        dataset: { id: "ds-1", slug: "prices" },
        version: 7,
        mode: "FULL",
        format: "CSV",
        compression: "gzip",
        createdAt: "2026-11-30T23:58:33.123Z",
        rowCount: 2500,
        columns: columns.map(({ name, type, nullable }) => ({ name, type, nullable })),
        files: staged.files.map((f) => ({
          name: f.name,
          size: f.bytes,
          rowCount: f.rowCount,
          sha256: f.sha256,
        })),
      });
      expect(receipt.manifest).toEqual(manifest);
      // No temporary upload names are left behind.
      expect((await readdir(dir)).sort()).toEqual(
        [...manifest.files.map((f) => f.name), "manifest.json"].sort(),
      );

      const parts = verifyAgainstManifest(manifest, files);
      const rows = (await Promise.all(parts.map((bytes) => parse(bytes, "CSV", true)))).flat();
      expect(rows).toHaveLength(2500);
      manifest.files.forEach((entry, i) => expect(entry.rowCount).toBe([1000, 1000, 500][i]));
      // CSV carries every value as text: NULL is the empty field, "" stays distinct from it.
      const asCsv = (i: number) =>
        Object.fromEntries(Object.entries(record(i)).map(([k, v]) => [k, v === null ? "" : String(v)]));
      expect(rows[0]).toEqual(asCsv(0));
      expect(rows[3]).toEqual(asCsv(3));
      expect(rows[2499]).toEqual(asCsv(2499));
      expect(rows.map((r) => r.id)).toEqual(Array.from({ length: 2500 }, (_, i) => record(i).id));
    } finally {
      await staged.dispose();
    }
  });

  it("lands a Parquet drop on S3 whose typed values read back with hyparquet", async () => {
    const staged = await stageDrop(
      {
        dataset: { id: "ds-2", slug: "trades" },
        version: 3,
        format: "PARQUET",
        gzip: false,
        columns,
        mode: "INCREMENTAL",
        properties: { sinceVersion: "1700000000000000" },
      },
      records(1_200),
      { rowGroupSize: 500 },
    );
    try {
      const receipt = await dropFiles(s3Target("buyer-42"), staged);
      const prefix = `buyer-42/${receipt.folder}/`;
      expect(receipt.manifestLocation).toBe(`s3://drops/${prefix}manifest.json`);
      const files = await readS3Folder(s3, "drops", prefix);
      const manifest = JSON.parse(files.get("manifest.json")!.toString()) as DropManifest;
      expect(manifest).toMatchObject({
        format: "PARQUET",
        compression: "none",
        rowCount: 1200,
        mode: "INCREMENTAL",
        properties: { sinceVersion: "1700000000000000" },
      });
      const [bytes] = verifyAgainstManifest(manifest, files);

      const path = join(tmpdir(), `drop-${Date.now()}.parquet`);
      await writeFile(path, bytes!);
      const rows = await parquetReadObjects({ file: await asyncBufferFromFile(path) });
      expect(rows).toHaveLength(manifest.files[0]!.rowCount);
      const first = rows[1]!;
      expect(first).toEqual({
        id: 9_007_199_254_740_994n,
        name: record(1).name,
        price: "1.01",
        qty: 1,
        active: false,
        day: new Date("2026-01-02T00:00:00Z"),
        seen_at: new Date("2026-01-01T00:00:01Z"),
        score: 0.125,
      });
      expect(rows[0]).toMatchObject({ seen_at: null, score: null });
      expect(rows.map((r) => String(r.id))).toEqual(Array.from({ length: 1200 }, (_, i) => record(i).id));
    } finally {
      await staged.dispose();
    }
  });

  it("drops an empty NDJSON increment as one empty file with rowCount 0", async () => {
    const staged = await stageDrop(
      {
        dataset: { id: "ds-3", slug: "empty" },
        version: 1,
        format: "NDJSON",
        gzip: false,
        columns,
        mode: "INCREMENTAL",
      },
      records(0),
    );
    try {
      const receipt = await dropFiles(s3Target(""), staged);
      expect(receipt.manifest.rowCount).toBe(0);
      expect(receipt.manifest.files).toEqual([
        { name: "part-00000.ndjson", size: 0, rowCount: 0, sha256: sha256(Buffer.alloc(0)) },
      ]);
    } finally {
      await staged.dispose();
    }
  });

  it("writes NDJSON lines with every column in schema order", async () => {
    const staged = await stageDrop(
      {
        dataset: { id: "ds-4", slug: "nd" },
        version: 1,
        format: "NDJSON",
        gzip: true,
        columns: columns.slice(0, 2),
        mode: "FULL",
      },
      (async function* () {
        yield { name: "a", id: "1", extra: "not a column" };
        yield { id: "2" };
      })(),
    );
    try {
      const rows = await parse(await readFile(staged.files[0]!.localPath), "NDJSON", true);
      expect(rows).toEqual([
        { id: "1", name: "a" },
        { id: "2", name: null },
      ]);
    } finally {
      await staged.dispose();
    }
  });

  it("writes no manifest when an upload fails, and a retry completes the same drop", async () => {
    const createdAt = new Date("2026-12-01T00:00:00.000Z");
    const spec = {
      dataset: { id: "ds-5", slug: "retry" },
      version: 2,
      format: "CSV" as const,
      gzip: false,
      columns,
      mode: "FULL" as const,
      createdAt,
    };
    const staged = await stageDrop(spec, records(30), { maxRowsPerFile: 10 });
    const folder = `${sshd.root}/retry-out/${dropFolder({ ...spec })}`;
    // A directory where the second part must go makes its rename fail.
    await sshd.put(`retry-out/${dropFolder(spec)}/part-00001.csv/keep`, "x");
    try {
      const error = await dropFiles(sftpTarget(`${sshd.root}/retry-out`), staged).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect((await readdir(folder)).sort()).toEqual(["part-00000.csv", "part-00001.csv"]);
      await rm(join(folder, "part-00001.csv"), { recursive: true });

      const receipt = await dropFiles(sftpTarget(`${sshd.root}/retry-out`), staged);
      expect((await readdir(folder)).sort()).toEqual([
        "manifest.json",
        "part-00000.csv",
        "part-00001.csv",
        "part-00002.csv",
      ]);
      expect(receipt.manifest.rowCount).toBe(30);
      expect((await stat(join(folder, "part-00001.csv"))).size).toBe(staged.files[1]!.bytes);
    } finally {
      await staged.dispose();
    }
  });

  it("probes targets before any drop: folder made, bucket opened, bad credentials named", async () => {
    expect(await probeDropTarget(sftpTarget(`${sshd.root}/probe/deep`))).toBe(
      `Ready to drop files at sftp://127.0.0.1:${sshd.port}${sshd.root}/probe/deep`,
    );
    expect((await stat(`${sshd.root}/probe/deep`)).isDirectory()).toBe(true);
    expect(await probeDropTarget(s3Target("p/"))).toBe("Ready to drop files at s3://drops/p/");
    const wrong = sftpTarget("/tmp", { password: "Wrong-Drop-Password" });
    const error = await probeDropTarget(wrong).catch((e: unknown) => e);
    expect((error as AppError).message).toMatch(/^SFTP login to .* was refused/);
    expect((error as AppError).message).not.toContain("Wrong-Drop-Password");
    const missing = s3Target("", "no-such-bucket");
    expect(((await probeDropTarget(missing).catch((e: unknown) => e)) as AppError).message).toBe(
      `The bucket s3://no-such-bucket at ${s3.endpoint} does not exist`,
    );
  });

  it("lists every problem with a target's settings and credentials", () => {
    expect(validateDropTarget("SFTP", { host: "h", port: 0, password: "x" }, {})).toEqual([
      "port: Too small: expected number to be >=1",
      "username: Invalid input: expected string, received undefined",
      "folder: Invalid input: expected string, received undefined",
      '(root): Unrecognized key: "password"',
      "secrets.(root): password or privateKey is required",
    ]);
    expect(validateDropTarget("S3", { bucket: "ok-bucket", prefix: "/abs" }, { accessKeyId: "a" })).toEqual([
      "prefix: must not start with /",
      "secrets.secretAccessKey: is required",
    ]);
    expect(
      validateDropTarget("S3", { bucket: "ok-bucket" }, { accessKeyId: "a", secretAccessKey: "b" }),
    ).toEqual([]);
  });
});
