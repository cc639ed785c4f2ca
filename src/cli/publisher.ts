// The publisher's commands (`datahus upload`, `run`, `follow`, `export`): a client of the HTTP API with
// an API key, nothing more. An upload reads the file with the same readers FILE sources use (CSV,
// TSV, JSON, NDJSON, Parquet, gzip), sends its records as NDJSON pushes (`POST /api/v1/ingest`)
// of at most --batch-bytes each, and prints each push's run id; `run` queues a pipeline's run
// (`POST /api/v1/pipelines/{id}/runs`); `follow` polls a run through
// GraphQL until it ends; `export` streams `/api/v1/data/export` to a file.
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { detectFormat, readRecords, type FileFormat } from "../sources/formats/index.js";

export interface ClientSettings {
  /** The API's base URL, e.g. http://127.0.0.1:4000 */
  url: string;
  apiKey: string;
}

/** Where progress goes: a bar redrawn in place on a terminal, a line now and then otherwise. */
export interface Terminal {
  out: (text: string) => void;
  err: (text: string) => void;
  /** stderr is a terminal: progress is redrawn in place. */
  tty: boolean;
}

/** A failure the user can act on: printed as is, exit status 1. */
export class CliFailure extends Error {}

/** Exit statuses: 0 done, 1 failed (a run, the server, the file), 2 usage. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const RUN_QUERY = `query DatahusCliRun($id: ID!) {
  node(id: $id) { ... on PipelineRun { id status progress rowsRead rowsWritten rowsRejected error } }
}`;

export interface RunState {
  id: string;
  status: "QUEUED" | "RUNNING" | "SUCCEEDED" | "FAILED" | "CANCELLED";
  progress: number | null;
  rowsRead: number;
  rowsWritten: number;
  rowsRejected: number;
  error: string | null;
}

const ENDED = new Set(["SUCCEEDED", "FAILED", "CANCELLED"]);

export class PublisherClient {
  constructor(private readonly settings: ClientSettings) {}

  private url(path: string): string {
    return new URL(
      path,
      this.settings.url.endsWith("/") ? this.settings.url : `${this.settings.url}/`,
    ).toString();
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { "x-api-key": this.settings.apiKey, "user-agent": "datahus-cli", ...extra };
  }

  /** One push of NDJSON lines; the run that loads them. */
  async push(slug: string, ndjson: Buffer): Promise<{ runId: string; records: number }> {
    const response = await this.fetch(`api/v1/ingest/${encodeURIComponent(slug)}`, {
      method: "POST",
      headers: this.headers({ "content-type": "application/x-ndjson" }),
      body: ndjson,
    });
    return (await response.json()) as { runId: string; records: number };
  }

  /** Queues a run of the pipeline (POST /api/v1/pipelines/{id}/runs); its id. */
  async startRun(pipelineId: string): Promise<string> {
    const response = await this.fetch(`api/v1/pipelines/${encodeURIComponent(pipelineId)}/runs`, {
      method: "POST",
      headers: this.headers(),
    });
    return ((await response.json()) as { id: string }).id;
  }

  async run(runId: string): Promise<RunState> {
    const response = await this.fetch("graphql", {
      method: "POST",
      headers: this.headers({ "content-type": "application/json", accept: "application/json" }),
      body: JSON.stringify({ query: RUN_QUERY, variables: { id: runId } }),
    });
    const body = (await response.json()) as {
      data?: { node: RunState | null } | null;
      errors?: { message: string; extensions?: { code?: string } }[];
    };
    if (body.errors?.length) {
      const [first] = body.errors;
      throw new CliFailure(`${first!.extensions?.code ?? "ERROR"}: ${first!.message}`);
    }
    if (!body.data?.node?.status) throw new CliFailure(`no pipeline run ${runId} for this key`);
    return body.data.node;
  }

  /** The export's response, its body not yet read. */
  async export(slug: string, format: string, after?: string): Promise<Response> {
    const query = new URLSearchParams({ dataset: slug, format, ...(after ? { after } : {}) });
    return this.fetch(`api/v1/data/export?${query}`, { headers: this.headers() });
  }

  /** fetch, with the API's `{ error: { code, message } }` turned into a CliFailure. */
  private async fetch(path: string, init: RequestInit): Promise<Response> {
    let response: Response;
    try {
      response = await fetch(this.url(path), init);
    } catch (error) {
      const cause = (error as Error & { cause?: Error }).cause ?? (error as Error);
      throw new CliFailure(`cannot reach ${this.settings.url}: ${cause.message}`);
    }
    if (response.ok) return response;
    const text = await response.text();
    let detail = text.slice(0, 500);
    try {
      const { error } = JSON.parse(text) as { error?: { code: string; message: string } };
      if (error) detail = `${error.code}: ${error.message}`;
    } catch {
      // not JSON: the text itself
    }
    throw new CliFailure(`HTTP ${response.status} from ${path.split("?")[0]}: ${detail}`);
  }
}

/** A progress line on stderr: redrawn in place on a terminal, else at most every 10%. */
class Progress {
  private lastShown = -1;

  constructor(
    private readonly term: Terminal,
    private readonly label: string,
  ) {}

  show(done: number, total: number | null, detail: string): void {
    const ratio = total ? Math.min(1, done / total) : null;
    if (this.term.tty) {
      const bar = ratio === null ? "" : `[${"#".repeat(Math.round(ratio * 30)).padEnd(30, ".")}] `;
      const percent = ratio === null ? "" : `${(ratio * 100).toFixed(0).padStart(3)}% `;
      this.term.err(`\r${this.label} ${bar}${percent}${detail}\x1b[K`);
      return;
    }
    const step = ratio === null ? 0 : Math.floor(ratio * 10);
    if (step === this.lastShown) return;
    this.lastShown = step;
    this.term.err(`${this.label} ${ratio === null ? "" : `${step * 10}% `}${detail}\n`);
  }

  /** The last line, shown whatever was shown before. */
  end(summary: string): void {
    this.term.err(this.term.tty ? `\r${this.label} ${summary}\x1b[K\n` : `${this.label} ${summary}\n`);
  }
}

export interface UploadOptions {
  file: string;
  slug: string;
  format?: FileFormat;
  /** Largest push; keep it under the server's INGEST_MAX_BYTES. */
  batchBytes: number;
}

/**
 * Reads the file and pushes its records as NDJSON; resolves to the run ids, in order. A row the
 * reader cannot parse is sent as its raw text (a JSON string), so the run quarantines it with the
 * others and the counts stay whole.
 */
export async function upload(
  client: PublisherClient,
  options: UploadOptions,
  term: Terminal,
): Promise<string[]> {
  const size = (await stat(options.file).catch(() => null))?.size;
  if (size === undefined) throw new CliFailure(`cannot read ${options.file}`);
  const { format, gzip } = detectFormat(options.file, options.format);
  let bytesRead = 0;
  const counted = createReadStream(options.file).pipe(
    new Transform({
      transform(chunk: Buffer, _encoding, done) {
        bytesRead += chunk.length;
        done(null, chunk);
      },
    }),
  );
  const progress = new Progress(term, `upload ${options.slug}`);
  const runs: string[] = [];
  let records = 0;
  let lines: Buffer[] = [];
  let pending = 0;
  const send = async () => {
    if (lines.length === 0) return;
    const pushed = await client.push(options.slug, Buffer.concat(lines));
    runs.push(pushed.runId);
    term.out(`${pushed.runId}\n`);
    lines = [];
    pending = 0;
  };
  for await (const row of readRecords(counted, { format, gzip })) {
    const line = Buffer.from(`${JSON.stringify(row.ok ? row.record : row.raw)}\n`);
    if (pending + line.length > options.batchBytes) await send();
    lines.push(line);
    pending += line.length;
    records += 1;
    progress.show(bytesRead, size, `${records} records, ${runs.length} pushes`);
  }
  await send();
  progress.end(`100% ${records} records, ${runs.length} pushes`);
  if (records === 0) throw new CliFailure(`${options.file} holds no records`);
  return runs;
}

/** Polls the run until it ends, showing its progress; resolves to its last state. */
export async function follow(
  client: PublisherClient,
  runId: string,
  term: Terminal,
  pollMs = 1000,
): Promise<RunState> {
  const progress = new Progress(term, `run ${runId}`);
  for (;;) {
    const run = await client.run(runId);
    const detail = `${run.status} read ${run.rowsRead} written ${run.rowsWritten} rejected ${run.rowsRejected}`;
    if (ENDED.has(run.status)) {
      progress.end(detail);
      term.out(`${run.id} ${detail}${run.error ? ` error: ${run.error}` : ""}\n`);
      return run;
    }
    progress.show(run.progress ?? 0, 1, detail);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

/** Streams the export to `out`; resolves to the rows the server counted for it (X-Records). */
export async function exportTo(
  client: PublisherClient,
  options: { slug: string; format: string; out: string },
  term: Terminal,
): Promise<number> {
  const response = await client.export(options.slug, options.format);
  const rows = Number(response.headers.get("x-records") ?? "0");
  const progress = new Progress(term, `export ${options.slug}`);
  let bytes = 0;
  let lines = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines += 1;
      // A text export has a line per row (CSV one more, its header); Parquet shows bytes only.
      progress.show(
        options.format === "parquet" ? 0 : lines,
        options.format === "parquet" ? null : rows,
        `${bytes} bytes`,
      );
      done(null, chunk);
    },
  });
  const body = Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>);
  try {
    await pipeline(body, counter, createWriteStream(options.out));
  } catch (error) {
    throw new CliFailure(
      `the export stopped before its end (${bytes} bytes written to ${options.out}): ${(error as Error).message}`,
    );
  }
  progress.end(`${bytes} bytes`);
  term.out(`${options.out}: ${rows} records, ${bytes} bytes\n`);
  return rows;
}
