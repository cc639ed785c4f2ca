// What the SFTP and S3 sources share: a folder of files read one after another through the file
// readers, each row tagged with its file, and a checkpoint naming every file already loaded with
// what identifies its content (size and mtime, or an ETag), so an INCREMENTAL sync reads only
// files that are new or changed.
import type { Readable } from "node:stream";
import { z } from "zod";
import { AppError } from "../../errors.js";
import { detectFormat, readRecords, type FileFormat } from "../formats/index.js";
import { encodingProblem, TEXT_ENCODINGS, type TextEncoding } from "../formats/text.js";
import type { ConnectionSample, ConnectorContext, SourceReader, SourceRow } from "./types.js";

export const FILE_FORMATS = ["CSV", "TSV", "JSON", "NDJSON", "PARQUET"] as const;

/** Parsing settings shared by file-based sources; unset ones follow each file's name. */
export const fileParseFields = {
  /** Unset: from each file's extension (`.csv`, `.ndjson`, `.parquet`, … with `.gz`). */
  format: z.enum(FILE_FORMATS).optional(),
  /** Unset: when the file name ends in `.gz`. */
  gzip: z.boolean().optional(),
  delimiter: z.string().length(1, "must be one character").optional(),
  header: z.boolean().optional(),
  /** Text files' encoding. Unset: UTF-8. */
  encoding: z.enum(TEXT_ENCODINGS).optional(),
};

export interface FileParseOptions {
  format?: FileFormat;
  gzip?: boolean;
  delimiter?: string;
  header?: boolean;
  encoding?: TextEncoding;
}

export interface RemoteFileRef {
  /** Where the file is (a path, an S3 key): the rows' `origin` and the checkpoint's key. */
  origin: string;
  /** The file's name, for telling its format. */
  name: string;
  size: number;
  /** What changes when the content does: { size, mtime } or { etag }. */
  identity: Record<string, string | number>;
}

/** An open connection to a folder of files. */
export interface RemoteFolder {
  list(): Promise<RemoteFileRef[]>;
  open(file: RemoteFileRef): Promise<Readable>;
  close(): Promise<void>;
}

const checkpointSchema = z.object({
  files: z.record(z.string(), z.record(z.string(), z.union([z.string(), z.number()]))),
});

/** The checkpoint stored after a sync: every file loaded so far, by origin. */
export type FilesCheckpoint = z.infer<typeof checkpointSchema>;

/** The pattern names a known extension, or the format is stated. */
export function formatProblem(pattern: string, format: FileFormat | undefined): string[] {
  if (format) return [];
  try {
    detectFormat(pattern);
    return [];
  } catch {
    return [
      "format: is required when the file pattern does not end in .csv, .tsv, .json, .ndjson or .parquet",
    ];
  }
}

const sameIdentity = (a: Record<string, unknown> | undefined, b: Record<string, unknown>) =>
  a !== undefined && JSON.stringify(a) === JSON.stringify(b);

export function readRemoteFiles(
  connect: () => Promise<RemoteFolder>,
  parse: FileParseOptions,
  context: ConnectorContext,
): SourceReader {
  const previous = parseCheckpoint(context);
  let plan: Promise<{ folder: RemoteFolder; files: RemoteFileRef[]; toRead: RemoteFileRef[] }> | undefined;
  let next: FilesCheckpoint | undefined;

  const planned = () =>
    (plan ??= (async () => {
      const folder = await connect();
      try {
        const files = await folder.list();
        const toRead =
          context.mode === "INCREMENTAL"
            ? files.filter((file) => !sameIdentity(previous.files[file.origin], file.identity))
            : files;
        context.log.info(
          { sourceId: context.sourceId, matching: files.length, reading: toRead.length, mode: context.mode },
          "Remote files listed",
        );
        return { folder, files, toRead };
      } catch (error) {
        await folder.close();
        throw error;
      }
    })());

  async function* rows(): AsyncGenerator<SourceRow> {
    const { folder, files, toRead } = await planned();
    try {
      for (const file of toRead) yield* fileRows(folder, file, parse);
      // Files gone from the folder drop out, so the checkpoint stays as small as the folder.
      next = { files: Object.fromEntries(files.map((file) => [file.origin, file.identity])) };
    } finally {
      await folder.close();
    }
  }

  return {
    [Symbol.asyncIterator]: () => rows(),
    checkpoint: () => next ?? previous,
    totalBytes: async () => (await planned()).toRead.reduce((sum, file) => sum + file.size, 0),
  };
}

/**
 * One file's rows. A file that cannot be read as a whole (unknown format, broken gzip, not
 * Parquet) becomes one failure row after whatever rows it gave, so one bad file is quarantined
 * with its reason instead of failing every retry of the sync. Network failures still throw.
 */
async function* fileRows(
  folder: RemoteFolder,
  file: RemoteFileRef,
  parse: FileParseOptions,
): AsyncGenerator<SourceRow> {
  let lastRow = 0;
  try {
    const detected = detectFormat(file.name, parse.format);
    const body = await folder.open(file);
    try {
      const records = readRecords(body, {
        format: detected.format,
        gzip: parse.gzip ?? detected.gzip,
        delimiter: parse.delimiter,
        header: parse.header,
        encoding: parse.encoding,
      });
      for await (const row of records) {
        lastRow = row.rowNumber;
        // A row's progress is within its own file; the run's progress counts bytes across files.
        yield row.ok ? { ...row, origin: file.origin, progress: undefined } : { ...row, origin: file.origin };
      }
    } finally {
      body.destroy();
    }
  } catch (error) {
    if (
      !(error instanceof AppError) ||
      error.code !== "BAD_USER_INPUT" ||
      error.fields.bucket ||
      error.fields.server
    ) {
      throw error;
    }
    yield { ok: false, rowNumber: lastRow + 1, raw: "", reasons: [error.message], origin: file.origin };
  }
}

function parseCheckpoint(context: ConnectorContext): FilesCheckpoint {
  if (context.checkpoint === null || context.checkpoint === undefined) return { files: {} };
  const parsed = checkpointSchema.safeParse(context.checkpoint);
  if (parsed.success) return parsed.data;
  context.log.warn({ sourceId: context.sourceId }, "Unrecognised checkpoint; reading every file");
  return { files: {} };
}

/** The first records of the first matching file, to show the settings work. */
export async function sampleRemoteFiles(
  folder: RemoteFolder,
  parse: FileParseOptions,
  max: number,
  where: string,
): Promise<ConnectionSample> {
  try {
    const files = await folder.list();
    const first = files[0];
    if (!first) return { message: `Connected; no file matches ${where} yet`, records: [] };
    const records: Record<string, unknown>[] = [];
    const failures: string[] = [];
    for await (const row of fileRows(folder, first, parse)) {
      const problem = row.ok ? encodingProblem(row.record) : null;
      if (problem) failures.push(`row ${row.rowNumber}: ${problem}`);
      else if (row.ok) records.push(row.record);
      else failures.push(`row ${row.rowNumber}: ${row.reasons.join(", ")}`);
      if (records.length + failures.length >= max) break;
    }
    const summary = `Read ${records.length} record(s) from ${first.origin} (${files.length} file(s) match)`;
    return { message: failures.length ? `${summary}; unreadable: ${failures.join("; ")}` : summary, records };
  } finally {
    await folder.close();
  }
}
