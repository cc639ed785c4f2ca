// The FILE source: one file, from an http(s) URL or from a local path inside the directory the
// operator allows (FILE_SOURCE_ROOT). Streams through the format readers, so memory stays flat
// whatever the file's size.
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve } from "node:path";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { z } from "zod";
import { AppError, badInput } from "../../errors.js";
import { guardedFetch, type OutboundPolicy } from "../../net/outbound.js";
import { detectFormat, readRecords, type FileFormat } from "../formats/index.js";
import { deferRows, mapRows } from "../formats/iterate.js";
import { encodingProblem, TEXT_ENCODINGS } from "../formats/text.js";
import { allowedUrl, refusedTarget } from "./targets.js";
import type {
  ConnectionSample,
  Connector,
  ConnectorContext,
  LocalCsv,
  SourceReader,
  SourceRow,
} from "./types.js";

export interface FileConnectorOptions {
  /** Local paths must resolve inside this directory; unset, local paths are refused. */
  root?: string | undefined;
  /** Set: URLs are fetched only from addresses this policy allows. */
  outbound?: OutboundPolicy | undefined;
}

const configSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).optional(),
    path: z.string().min(1).optional(),
    format: z.enum(["CSV", "TSV", "JSON", "NDJSON", "PARQUET"]).optional(),
    gzip: z.boolean().optional(),
    delimiter: z.string().length(1, "must be one character").optional(),
    header: z.boolean().optional(),
    encoding: z.enum(TEXT_ENCODINGS).optional(),
  })
  .superRefine((config, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: [path], message });
    if ((config.url === undefined) === (config.path === undefined)) {
      problem("url", "give either url or path");
      return;
    }
    if (config.url && URL.canParse(config.url)) {
      const url = new URL(config.url);
      if (url.username || url.password) problem("url", "must not carry credentials");
    }
    const name = config.path ?? (config.url && URL.canParse(config.url) ? new URL(config.url).pathname : "");
    if (!config.format) {
      try {
        detectFormat(name);
      } catch {
        problem(
          "format",
          "is required when the file name does not end in .csv, .tsv, .json, .ndjson or .parquet",
        );
      }
    }
  });
export type FileSourceConfig = z.output<typeof configSchema>;

/** What identifies one version of the file: an unchanged fingerprint means unchanged content. */
export interface FileCheckpoint {
  size: number | null;
  /** Modification time (local files) or Last-Modified (URLs). */
  modified: string | null;
  etag: string | null;
}

interface OpenedFile {
  body: Readable;
  name: string;
  fingerprint: FileCheckpoint;
}

const sameFile = (a: FileCheckpoint, b: FileCheckpoint) =>
  a.size === b.size &&
  a.modified === b.modified &&
  a.etag === b.etag &&
  (a.etag !== null || a.modified !== null);

// guardedFetch's timeout covers the whole response, body included: a big file needs its time
// (the run's own signal stops it sooner when cancelled).
const URL_TIMEOUTS = { timeoutMs: 24 * 60 * 60 * 1000, connectTimeoutMs: 30_000 };

export function fileConnector(options: FileConnectorOptions): Connector {
  const problemsOf = (config: Record<string, unknown>): string[] => {
    const result = configSchema.safeParse(config);
    const problems = result.success
      ? []
      : result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    const path = config.path;
    if (typeof path === "string") {
      if (!options.root) {
        problems.push(
          "path: local files are not enabled on this server (FILE_SOURCE_ROOT is not set); serve the file over http(s) and set url",
        );
      } else if (isAbsolute(path) || escapes(path)) {
        problems.push("path: must be relative to the server's file directory, without '..'");
      }
    }
    return problems;
  };

  async function open(config: FileSourceConfig, signal: AbortSignal): Promise<OpenedFile> {
    if (config.path !== undefined) return openLocal(options.root, config.path);
    const url = new URL(config.url!);
    // Guarded, a redirect is an answer (3xx, refused below), never followed to an unchecked host.
    const request = options.outbound
      ? guardedFetch(url, { signal }, options.outbound, URL_TIMEOUTS).then(
          (response) => response as unknown as Response,
        )
      : fetch(url, { signal, redirect: "error" });
    const response = await request.catch((error: unknown) => {
      if (signal.aborted) throw error;
      const refused = refusedTarget("url", error);
      if (refused !== error) throw refused;
      throw new AppError(
        "SERVICE_UNAVAILABLE",
        `Could not reach ${url.origin}${url.pathname}`,
        {},
        { cause: error },
      );
    });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      if (response.status >= 300 && response.status < 400) {
        throw badInput(
          `${url.origin}${url.pathname} redirected (${response.status}); set the source URL to the final address`,
          { status: response.status },
        );
      }
      throw new AppError("SERVICE_UNAVAILABLE", `${url.origin}${url.pathname} answered ${response.status}`, {
        status: response.status,
      });
    }
    const length = Number(response.headers.get("content-length"));
    return {
      body: Readable.fromWeb(response.body as WebReadableStream<Uint8Array>),
      name: url.pathname,
      fingerprint: {
        size: Number.isFinite(length) && response.headers.has("content-length") ? length : null,
        modified: response.headers.get("last-modified"),
        etag: response.headers.get("etag"),
      },
    };
  }

  function rows(config: FileSourceConfig, file: OpenedFile): AsyncIterable<SourceRow> {
    const detected = detectFormat(file.name, config.format as FileFormat | undefined);
    const parsed = readRecords(file.body, {
      format: detected.format,
      gzip: config.gzip ?? detected.gzip,
      delimiter: config.delimiter,
      header: config.header,
      encoding: config.encoding,
    });
    const origin = file.name.slice(file.name.lastIndexOf("/") + 1);
    return mapRows(
      parsed,
      (row): SourceRow => Object.assign(row, { origin }),
      () => file.body.destroy(),
    );
  }

  return {
    validate: (config) => problemsOf(config),

    async checkTargets(config) {
      if (options.outbound && typeof config.url === "string") {
        await allowedUrl("url", config.url, options.outbound);
      }
    },

    read(context: ConnectorContext): SourceReader {
      const config = parse(context.config, problemsOf);
      let opened: Promise<OpenedFile> | undefined;
      const openOnce = () => (opened ??= open(config, context.signal));
      let checkpoint: FileCheckpoint | null = null;
      return {
        checkpoint: () => checkpoint,
        async totalBytes() {
          return (await openOnce()).fingerprint.size;
        },
        ...deferRows(async () => {
          const file = await openOnce();
          checkpoint = file.fingerprint;
          const previous = context.checkpoint as FileCheckpoint | null;
          // An INCREMENTAL sync of a file that has not changed (same size and mtime, or ETag) has
          // nothing new to load. FULL_REFRESH always reloads.
          if (context.mode === "INCREMENTAL" && previous && sameFile(previous, file.fingerprint)) {
            file.body.destroy();
            context.log.info({ sourceId: context.sourceId }, "The file has not changed since the last sync");
            return undefined;
          }
          return rows(config, file);
        }),
      };
    },

    async localCsv(context: ConnectorContext): Promise<LocalCsv | null> {
      const config = parse(context.config, problemsOf);
      if (config.path === undefined) return null;
      const detected = detectFormat(config.path, config.format as FileFormat | undefined);
      if (detected.format !== "CSV" || (config.gzip ?? detected.gzip)) return null;
      if (config.encoding !== undefined && config.encoding !== "UTF_8") return null;
      const file = await findLocal(options.root, config.path);
      const previous = context.checkpoint as FileCheckpoint | null;
      if (context.mode === "INCREMENTAL" && previous && sameFile(previous, file.fingerprint)) return null;
      return {
        path: file.path,
        origin: file.path.slice(file.path.lastIndexOf("/") + 1),
        size: file.fingerprint.size ?? 0,
        delimiter: config.delimiter ?? ",",
        header: config.header ?? true,
        checkpoint: file.fingerprint,
      };
    },

    async sample(context, max): Promise<ConnectionSample> {
      const config = parse(context.config, problemsOf);
      const abort = new AbortController();
      const stop = () => abort.abort();
      context.signal.addEventListener("abort", stop, { once: true });
      try {
        const file = await open(config, abort.signal);
        const records: Record<string, unknown>[] = [];
        const failures: string[] = [];
        for await (const row of rows(config, file)) {
          const problem = row.ok ? encodingProblem(row.record) : null;
          if (problem) failures.push(`row ${row.rowNumber}: ${problem}`);
          else if (row.ok) records.push(row.record);
          else failures.push(`row ${row.rowNumber}: ${row.reasons.join(", ")}`);
          if (records.length + failures.length >= max) break;
        }
        if (failures.length)
          throw badInput(`Read ${records.length} record(s); unreadable: ${failures.join("; ")}`);
        return { message: `Read ${records.length} record(s)`, records };
      } finally {
        context.signal.removeEventListener("abort", stop);
        abort.abort();
      }
    },
  };
}

function parse(config: Record<string, unknown>, problemsOf: (c: Record<string, unknown>) => string[]) {
  const problems = problemsOf(config);
  if (problems.length) throw badInput(`Invalid source: ${problems.join("; ")}`, { problems });
  return configSchema.parse(config);
}

const escapes = (path: string) => path.split(/[\\/]/).includes("..");

async function openLocal(root: string | undefined, path: string): Promise<OpenedFile> {
  const file = await findLocal(root, path);
  return {
    body: createReadStream(file.path, { highWaterMark: 256 * 1024 }),
    name: file.path,
    fingerprint: file.fingerprint,
  };
}

/**
 * Finds `path` under `root` after resolving symbolic links on both, so that a link pointing out
 * of the directory is refused like a `..` would be.
 */
async function findLocal(
  root: string | undefined,
  path: string,
): Promise<{ path: string; fingerprint: FileCheckpoint }> {
  if (!root) throw badInput("Local files are not enabled on this server (FILE_SOURCE_ROOT is not set)");
  const base = await realpath(root);
  let target: string;
  try {
    target = await realpath(resolve(base, path));
  } catch {
    throw badInput(`The file "${path}" does not exist in the server's file directory`);
  }
  const inside = relative(base, target);
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) {
    throw badInput(`The path "${path}" leads outside the server's file directory`);
  }
  const info = await stat(target);
  if (!info.isFile()) throw badInput(`"${path}" is not a file`);
  return { path: target, fingerprint: { size: info.size, modified: info.mtime.toISOString(), etag: null } };
}
