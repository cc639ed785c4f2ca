// A file drop: a dataset's records written to local part files first (staged: counted, sized and
// hashed before anything leaves), then uploaded to an SFTP folder or S3 prefix, with the manifest
// uploaded LAST. A buyer who sees manifest.json knows every file it lists is complete.
//
// Layout under the target's folder or prefix:
//   <dataset-slug>/<YYYYMMDDTHHMMSS.mmmZ>-v<version>/part-00000.csv.gz
//   <dataset-slug>/<YYYYMMDDTHHMMSS.mmmZ>-v<version>/part-00001.csv.gz
//   <dataset-slug>/<YYYYMMDDTHHMMSS.mmmZ>-v<version>/manifest.json
// Folder names sort by time; each drop gets its own folder, so a drop never overwrites another.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import type { Column } from "../../catalog/columns.js";
import { AppError } from "../../errors.js";
import { abortError } from "../../transfer/deadline.js";
import { openDropStore, type DropConnectOptions, type DropTarget } from "./targets.js";
import {
  CONTENT_TYPES,
  dataFileName,
  writeDataFile,
  type DataFileStats,
  type DropFormat,
} from "./writers.js";

export const MANIFEST_NAME = "manifest.json";

export interface DropSpec {
  dataset: { id: string; slug: string };
  /** The dataset version the records were read at. */
  version: number;
  format: DropFormat;
  gzip: boolean;
  /** Column schema, in file order. */
  columns: readonly Pick<Column, "name" | "type" | "nullable">[];
  /** FULL: a snapshot; INCREMENTAL: only rows changed since the previous drop. */
  mode: "FULL" | "INCREMENTAL";
  /** When the drop was made; names its folder. @default now */
  createdAt?: Date;
  /** Extra facts for the manifest (a watermark, the delivery id); JSON values only. */
  properties?: Record<string, unknown>;
}

export interface StagingOptions {
  /** A new part file starts after this many rows. @default 1000000 */
  maxRowsPerFile?: number;
  /** Rows per Parquet row group. @default 50000 */
  rowGroupSize?: number;
  signal?: AbortSignal;
}

export interface StagedFile extends DataFileStats {
  name: string;
  localPath: string;
}

/** Part files on local disk, ready to upload. `dispose()` removes them. */
export interface StagedDrop {
  spec: DropSpec & { createdAt: Date };
  files: StagedFile[];
  rowCount: number;
  dispose(): Promise<void>;
}

export interface DropManifest {
  manifestVersion: 1;
  dataset: { id: string; slug: string };
  version: number;
  mode: "FULL" | "INCREMENTAL";
  format: DropFormat;
  compression: "gzip" | "none";
  createdAt: string;
  rowCount: number;
  columns: { name: string; type: string; nullable: boolean }[];
  files: { name: string; size: number; rowCount: number; sha256: string }[];
  properties?: Record<string, unknown>;
}

export interface DropReceipt {
  /** The drop's folder, relative to the target's folder or prefix. */
  folder: string;
  /** Where the manifest landed: `sftp://host:22/out/slug/…/manifest.json` or `s3://bucket/…`. */
  manifestLocation: string;
  manifest: DropManifest;
  /** Bytes uploaded, manifest included. */
  bytes: number;
}

/**
 * Writes the records to part files in a temporary folder. Nothing is uploaded yet, so a caller
 * can check the row count (to charge for it) before anything is sent. Always yields at least one
 * part, possibly empty (a header-only CSV, an empty Parquet file), so every drop has a file.
 */
export async function stageDrop(
  spec: DropSpec,
  records: AsyncIterable<Record<string, unknown>>,
  options: StagingOptions = {},
): Promise<StagedDrop> {
  const maxRows = options.maxRowsPerFile ?? 1_000_000;
  if (!Number.isInteger(maxRows) || maxRows < 1)
    throw new AppError("BAD_USER_INPUT", "maxRowsPerFile must be ≥ 1");
  const dir = await mkdtemp(join(tmpdir(), "datahus-drop-"));
  const dispose = () => rm(dir, { recursive: true, force: true });
  const files: StagedFile[] = [];
  try {
    const source = records[Symbol.asyncIterator]();
    let next = await source.next();
    do {
      const part = (async function* () {
        for (let n = 0; n < maxRows && !next.done; n++) {
          if (options.signal?.aborted) throw abortError(options.signal);
          yield next.value;
          next = await source.next();
        }
      })();
      const name = dataFileName(files.length, spec.format, spec.gzip);
      const localPath = join(dir, name);
      const stats = await writeDataFile(localPath, part, {
        format: spec.format,
        gzip: spec.gzip,
        columns: spec.columns,
        rowGroupSize: options.rowGroupSize,
      });
      files.push({ name, localPath, ...stats });
    } while (!next.done);
  } catch (error) {
    await dispose();
    throw error;
  }
  return {
    spec: { ...spec, createdAt: spec.createdAt ?? new Date() },
    files,
    rowCount: files.reduce((sum, file) => sum + file.rowCount, 0),
    dispose,
  };
}

/** `20261130T235833.123Z`: sortable, and free of the `:` some file systems refuse. */
export function dropTimestamp(date: Date): string {
  return date.toISOString().replace(/[-:]/g, "");
}

/** `<slug>/<timestamp>-v<version>`, relative to the target's folder or prefix. */
export function dropFolder(spec: { dataset: { slug: string }; version: number; createdAt: Date }): string {
  return `${spec.dataset.slug}/${dropTimestamp(spec.createdAt)}-v${spec.version}`;
}

export function buildManifest(staged: StagedDrop): DropManifest {
  const { spec } = staged;
  return {
    manifestVersion: 1,
    dataset: { id: spec.dataset.id, slug: spec.dataset.slug },
    version: spec.version,
    mode: spec.mode,
    format: spec.format,
    compression: spec.gzip ? "gzip" : "none",
    createdAt: spec.createdAt.toISOString(),
    rowCount: staged.rowCount,
    columns: spec.columns.map((c) => ({ name: c.name, type: c.type, nullable: c.nullable })),
    files: staged.files.map((f) => ({ name: f.name, size: f.bytes, rowCount: f.rowCount, sha256: f.sha256 })),
    ...(spec.properties ? { properties: spec.properties } : {}),
  };
}

/**
 * Uploads the staged part files, checking each arrived whole (its size on the server), then the
 * manifest.
 * A failure before the manifest leaves no manifest, so readers ignore the partial folder; the
 * retry writes a complete drop (same folder, as the staged spec keeps its createdAt).
 */
export async function dropFiles(
  target: DropTarget,
  staged: StagedDrop,
  options: DropConnectOptions = {},
): Promise<DropReceipt> {
  const folder = dropFolder(staged.spec);
  const store = await openDropStore(target, options);
  try {
    let bytes = 0;
    for (const file of staged.files) {
      const sent = await store.upload(
        file.localPath,
        `${folder}/${file.name}`,
        CONTENT_TYPES[staged.spec.format],
      );
      if (sent.bytes !== file.bytes) {
        throw new AppError(
          "SERVICE_UNAVAILABLE",
          `${file.name} arrived with ${sent.bytes} bytes instead of ${file.bytes}; the drop will be retried`,
        );
      }
      bytes += sent.bytes;
    }
    const manifest = buildManifest(staged);
    const text = Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`);
    const path = `${folder}/${MANIFEST_NAME}`;
    await store.write(path, Readable.from([text]), "application/json");
    return { folder, manifestLocation: store.locate(path), manifest, bytes: bytes + text.length };
  } finally {
    await store.close();
  }
}
