// The FILE connector on local files: what FILE_SOURCE_ROOT lets through, checkpoints, gzip.
import { mkdir, mkdtemp, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileConnector, type FileCheckpoint } from "../../src/sources/connectors/file.connector.js";
import type { ConnectorContext, SourceRow } from "../../src/sources/connectors/types.js";

let dir: string;
let root: string;
const quiet = { debug() {}, info() {}, warn() {} };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "file-connector-"));
  root = join(dir, "root");
  await mkdir(join(root, "sub"), { recursive: true });
  await writeFile(join(dir, "secret.csv"), "id\n1\n");
  await writeFile(join(root, "sub", "a.csv"), "id,name\n1,a\n2,b\n");
  await writeFile(join(root, "b.csv.gz"), gzipSync("id,name\n3,c\n"));
  await symlink(join(dir, "secret.csv"), join(root, "out.csv"));
  await symlink(join(root, "sub", "a.csv"), join(root, "in.csv"));
});

afterAll(() => rm(dir, { recursive: true, force: true }));

const context = (
  config: Record<string, unknown>,
  extra: Partial<ConnectorContext> = {},
): ConnectorContext => ({
  sourceId: "s",
  runId: "r",
  config,
  secrets: {},
  checkpoint: null,
  mode: "FULL_REFRESH",
  log: quiet,
  signal: new AbortController().signal,
  ...extra,
});

async function readAll(config: Record<string, unknown>, extra: Partial<ConnectorContext> = {}) {
  const reader = fileConnector({ root }).read(context(config, extra));
  const rows: SourceRow[] = [];
  for await (const row of reader) rows.push(row);
  return {
    rows,
    checkpoint: reader.checkpoint() as FileCheckpoint | null,
    total: await reader.totalBytes?.(),
  };
}

describe("FILE connector", () => {
  it("refuses local paths without FILE_SOURCE_ROOT, absolute paths and '..'", () => {
    expect(fileConnector({}).validate({ path: "a.csv" }, {})[0]).toMatch(/FILE_SOURCE_ROOT is not set/);
    const connector = fileConnector({ root });
    expect(connector.validate({ path: "sub/a.csv" }, {})).toEqual([]);
    expect(connector.validate({ path: "/etc/passwd.csv" }, {})[0]).toMatch(/relative/);
    expect(connector.validate({ path: "sub/../../secret.csv" }, {})[0]).toMatch(/without '\.\.'/);
    expect(connector.validate({ url: "https://x/a.csv", path: "a.csv" }, {})[0]).toMatch(
      /either url or path/,
    );
    expect(connector.validate({ url: "ftp://x/a.csv" }, {})[0]).toMatch(/http or https/);
    expect(connector.validate({ path: "a.txt" }, {})[0]).toMatch(/^format: is required/);
  });

  it("reads a file inside the root, with origin, row numbers and its size", async () => {
    const { rows, total } = await readAll({ path: "sub/a.csv" });
    expect(rows).toMatchObject([
      { ok: true, rowNumber: 1, record: { id: "1", name: "a" }, origin: "a.csv" },
      { ok: true, rowNumber: 2, record: { id: "2", name: "b" }, origin: "a.csv" },
    ]);
    expect(total).toBe("id,name\n1,a\n2,b\n".length);
  });

  it("follows symbolic links only while they stay inside the root", async () => {
    expect((await readAll({ path: "in.csv" })).rows).toHaveLength(2);
    await expect(readAll({ path: "out.csv" })).rejects.toThrow(/outside the server's file directory/);
    await expect(readAll({ path: "missing.csv" })).rejects.toThrow(/does not exist/);
  });

  it("reads gzip by its name", async () => {
    expect((await readAll({ path: "b.csv.gz" })).rows).toMatchObject([{ ok: true, record: { id: "3" } }]);
  });

  it("skips an unchanged file on INCREMENTAL runs, and reads it again once it changes", async () => {
    const first = await readAll({ path: "sub/a.csv" }, { mode: "INCREMENTAL" });
    expect(first.rows).toHaveLength(2);
    expect(first.checkpoint).toMatchObject({ size: 16, etag: null });
    const again = await readAll({ path: "sub/a.csv" }, { mode: "INCREMENTAL", checkpoint: first.checkpoint });
    expect(again.rows).toEqual([]);
    // FULL_REFRESH reads it whatever the checkpoint.
    expect((await readAll({ path: "sub/a.csv" }, { checkpoint: first.checkpoint })).rows).toHaveLength(2);
    await utimes(join(root, "sub", "a.csv"), new Date(), new Date(Date.now() + 5000));
    const touched = await readAll(
      { path: "sub/a.csv" },
      { mode: "INCREMENTAL", checkpoint: first.checkpoint },
    );
    expect(touched.rows).toHaveLength(2);
  });

  it("samples the first records", async () => {
    const sample = await fileConnector({ root }).sample(
      {
        sourceId: "s",
        config: { path: "sub/a.csv" },
        secrets: {},
        log: quiet,
        signal: new AbortController().signal,
      },
      1,
    );
    expect(sample).toEqual({ message: "Read 1 record(s)", records: [{ id: "1", name: "a" }] });
  });
});
