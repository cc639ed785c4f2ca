// Pure pieces of the SFTP/S3 plumbing and file drops: globs, fingerprints, drop naming, manifests.
import { describe, expect, it } from "vitest";
import { dataFileName } from "../../src/deliveries/drops/writers.js";
import { buildManifest, dropFolder, type StagedDrop } from "../../src/deliveries/drops/drop.js";
import { AppError } from "../../src/errors.js";
import { fingerprint, splitRemoteGlob } from "../../src/transfer/sftp.js";

describe("splitRemoteGlob", () => {
  it("splits a folder from a file-name pattern, and refuses wildcards in folders", () => {
    expect(splitRemoteGlob("/incoming/*.csv")).toEqual({ dir: "/incoming", pattern: "*.csv" });
    expect(splitRemoteGlob("/a//b/../c/data.csv.gz")).toEqual({ dir: "/a/c", pattern: "data.csv.gz" });
    expect(splitRemoteGlob("relative/{x,y}.ndjson")).toEqual({ dir: "relative", pattern: "{x,y}.ndjson" });
    expect(splitRemoteGlob("*.parquet")).toEqual({ dir: ".", pattern: "*.parquet" });
    expect(() => splitRemoteGlob("/in/*/x.csv")).toThrow(AppError);
    expect(() => splitRemoteGlob("/in/**/x.csv")).toThrow(/wildcards are allowed in the file name only/);
  });
});

it("prints host key fingerprints the way ssh-keygen -l does", () => {
  // sha256("abc"), base64 without padding
  expect(fingerprint(Buffer.from("abc"))).toBe("SHA256:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0");
});

describe("drop naming", () => {
  it("names part files by index, format and compression", () => {
    expect(dataFileName(0, "CSV", true)).toBe("part-00000.csv.gz");
    expect(dataFileName(12, "NDJSON", false)).toBe("part-00012.ndjson");
    expect(dataFileName(3, "PARQUET", false)).toBe("part-00003.parquet");
  });

  it("puts each drop in a folder that sorts by time and carries the version", () => {
    const createdAt = new Date("2026-11-30T23:58:33.123Z");
    expect(dropFolder({ dataset: { slug: "fx-rates" }, version: 12, createdAt })).toBe(
      "fx-rates/20261130T235833.123Z-v12",
    );
    const later = dropFolder({
      dataset: { slug: "fx-rates" },
      version: 9,
      createdAt: new Date("2026-12-01T00:00:00Z"),
    });
    expect([later, dropFolder({ dataset: { slug: "fx-rates" }, version: 12, createdAt })].sort()[1]).toBe(
      later,
    );
  });

  it("builds a manifest whose totals add up from the staged files", () => {
    const staged: StagedDrop = {
      spec: {
        dataset: { id: "d1", slug: "s" },
        version: 4,
        format: "NDJSON",
        gzip: false,
        columns: [{ name: "id", type: "INT64", nullable: false }],
        mode: "INCREMENTAL",
        createdAt: new Date("2026-01-01T00:00:00Z"),
        properties: { sinceVersion: "17" },
      },
      files: [
        { name: "part-00000.ndjson", localPath: "/x/0", rowCount: 2, bytes: 20, sha256: "a".repeat(64) },
        { name: "part-00001.ndjson", localPath: "/x/1", rowCount: 1, bytes: 10, sha256: "b".repeat(64) },
      ],
      rowCount: 3,
      dispose: () => Promise.resolve(),
    };
    expect(buildManifest(staged)).toEqual({
      manifestVersion: 1,
      dataset: { id: "d1", slug: "s" },
      version: 4,
      mode: "INCREMENTAL",
      format: "NDJSON",
      compression: "none",
      createdAt: "2026-01-01T00:00:00.000Z",
      rowCount: 3,
      columns: [{ name: "id", type: "INT64", nullable: false }],
      files: [
        { name: "part-00000.ndjson", size: 20, rowCount: 2, sha256: "a".repeat(64) },
        { name: "part-00001.ndjson", size: 10, rowCount: 1, sha256: "b".repeat(64) },
      ],
      properties: { sinceVersion: "17" },
    });
  });
});
