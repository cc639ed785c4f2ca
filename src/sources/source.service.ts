// Sources: where a publisher's data comes from. The non-secret settings are stored as given
// (and shown); the credentials are encrypted at rest and only decrypted to talk to the source.
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { z } from "zod";
import { ModelReader, type ModelDelegate } from "../db/model-reader.js";
import type { Encryption } from "../db/encryption.js";
import { AppError, badInput, notFound } from "../errors.js";
import type { Prisma, PrismaClient, Source, SourceType } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageLimits } from "../pagination.js";
import { connectorFor } from "./connectors/registry.js";
import type { ConnectorLog } from "./connectors/types.js";
import { detectFormat, readRecords } from "./formats/index.js";

export interface SourceInput {
  name: string;
  type: SourceType;
  config: Record<string, unknown>;
  secrets?: Record<string, unknown> | null;
  schedule?: string | null;
}

/** Undefined keeps a field; `secrets: null` and `schedule: null` remove them. */
export interface SourceUpdate {
  name?: string | null;
  config?: Record<string, unknown> | null;
  secrets?: Record<string, unknown> | null;
  schedule?: string | null;
}

export interface ConnectionTestResult {
  ok: boolean;
  message: string | null;
  sampleRecords: Record<string, unknown>[] | null;
}

/** Records a connection test reads at most. */
export const SAMPLE_SIZE = 5;
/** How long a connection test may take, whatever the source. */
const TEST_TIMEOUT_MS = 30_000;
const WRITE = ["PUBLISHER", "pipelines:write"];

/**
 * FILE sources read http(s) URLs only, for now: a local `path` would let any publisher read the
 * server's files. Paths come back with an allow-listed directory (the issue's file connector).
 */
const fileConfigSchema = z
  .strictObject({
    url: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).optional(),
    path: z.string().optional(),
    format: z.enum(["CSV", "TSV", "JSON", "NDJSON", "PARQUET"]).optional(),
    gzip: z.boolean().optional(),
    delimiter: z.string().length(1, "must be one character").optional(),
    header: z.boolean().optional(),
  })
  .superRefine((config, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: "custom", path: [path], message });
    if (config.path !== undefined) {
      problem("path", "local files are not supported yet; serve the file over http(s) and set url");
    }
    if (config.url === undefined && config.path === undefined) problem("url", "is required");
    if (config.url && URL.canParse(config.url)) {
      const url = new URL(config.url);
      if (url.username || url.password) problem("url", "must not carry credentials");
      if (!config.format) {
        try {
          detectFormat(url.pathname);
        } catch {
          problem(
            "format",
            "is required when the URL does not end in .csv, .tsv, .json, .ndjson or .parquet",
          );
        }
      }
    }
  });
type FileSourceConfig = z.output<typeof fileConfigSchema>;

const secretsSchema = z.record(z.string(), z.string().max(64_000));

// Five fields (minute hour day month weekday): numbers, names, *, ranges, lists and steps.
const CRON_FIELD = /^(\*|[0-9a-z]+(-[0-9a-z]+)?)(\/[0-9]+)?(,(\*|[0-9a-z]+(-[0-9a-z]+)?)(\/[0-9]+)?)*$/i;

/** A 5-field cron expression, checked for shape (pg-boss rejects the rest when scheduling). */
export function isCronExpression(value: string): boolean {
  const fields = value.trim().split(/\s+/);
  return fields.length === 5 && fields.every((f) => CRON_FIELD.test(f));
}

export class SourceService {
  readonly sources: ModelReader<Source>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly encryption: Encryption,
    limits: PageLimits,
    private readonly log: ConnectorLog,
  ) {
    // Deleted sources are gone for every read (connections, node(id:), relations), so the filter
    // sits under the reader rather than in each caller.
    const live: ModelDelegate<Source> = {
      findMany: (args) =>
        prisma.source.findMany({ ...args, where: { AND: [args.where ?? {}, { deletedAt: null }] } }),
      findFirst: (args) =>
        prisma.source.findFirst({ ...args, where: { AND: [args.where ?? {}, { deletedAt: null }] } }),
    };
    this.sources = new ModelReader(live, "source", limits);
  }

  async create(caller: Caller, input: SourceInput): Promise<Source> {
    const who = authorize(caller, WRITE);
    const secrets = input.secrets ?? null;
    const fields = validate(input.type, input.name, input.config, secrets, input.schedule ?? null);
    return this.prisma.source.create({
      data: {
        accountId: who.accountId,
        type: input.type,
        ...fields,
        secretsEncrypted: this.seal(secrets),
      },
    });
  }

  async update(caller: Caller, id: string, input: SourceUpdate): Promise<Source> {
    const source = await this.own(caller, id);
    const secrets = input.secrets === undefined ? this.open(source) : input.secrets;
    const fields = validate(
      source.type,
      input.name ?? source.name,
      input.config ?? (source.config as Record<string, unknown>),
      secrets,
      input.schedule === undefined ? source.schedule : input.schedule,
    );
    return this.prisma.source.update({
      where: { id: source.id },
      data: {
        ...fields,
        ...(input.secrets === undefined ? {} : { secretsEncrypted: this.seal(input.secrets) }),
      },
    });
  }

  /** Soft delete: pipelines' history keeps its source, but no read shows it again. */
  async delete(caller: Caller, id: string): Promise<Source> {
    const source = await this.own(caller, id);
    return this.prisma.source.update({ where: { id: source.id }, data: { deletedAt: new Date() } });
  }

  /**
   * Reads the first records to show the settings work. Connector failures are the answer
   * (ok: false), not errors; messages never carry secrets.
   */
  async testConnection(caller: Caller, id: string): Promise<ConnectionTestResult> {
    const source = await this.own(caller, id);
    const secrets = (this.open(source) ?? {}) as Record<string, string>;
    const connector = connectorFor(source.type);
    try {
      if (connector) {
        const sample = await connector.sample(
          {
            sourceId: source.id,
            config: source.config as Record<string, unknown>,
            secrets,
            log: this.log,
            signal: AbortSignal.timeout(TEST_TIMEOUT_MS),
          },
          SAMPLE_SIZE,
        );
        return { ok: true, message: sample.message, sampleRecords: sample.records };
      }
      if (source.type === "FILE") return await this.testFile(source);
      return {
        ok: false,
        message: `Testing ${source.type} sources is not supported yet`,
        sampleRecords: null,
      };
    } catch (error) {
      const reason = error instanceof AppError ? error.message : "The source could not be read";
      if (!(error instanceof AppError)) {
        this.log.warn({ sourceId: source.id, error: (error as Error).name }, "Source connection test failed");
      }
      return { ok: false, message: redact(reason, secrets), sampleRecords: null };
    }
  }

  private async testFile(source: Source): Promise<ConnectionTestResult> {
    const config = fileConfigSchema.parse(source.config) as FileSourceConfig & { url: string };
    const url = new URL(config.url);
    const detected = detectFormat(url.pathname, config.format);
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TEST_TIMEOUT_MS);
    try {
      const response = await fetch(url, { signal: abort.signal, redirect: "error" }).catch(
        (error: unknown) => {
          throw new AppError(
            "SERVICE_UNAVAILABLE",
            `Could not reach ${url.origin}${url.pathname}`,
            {},
            { cause: error },
          );
        },
      );
      if (!response.ok || !response.body) {
        return {
          ok: false,
          message: `${url.origin}${url.pathname} answered ${response.status}`,
          sampleRecords: null,
        };
      }
      const body = Readable.fromWeb(response.body as WebReadableStream<Uint8Array>);
      const sample: Record<string, unknown>[] = [];
      const failures: string[] = [];
      const rows = readRecords(body, {
        format: detected.format,
        gzip: config.gzip ?? detected.gzip,
        delimiter: config.delimiter,
        header: config.header,
      });
      for await (const row of rows) {
        if (row.ok) sample.push(row.record);
        else failures.push(`row ${row.rowNumber}: ${row.reasons.join(", ")}`);
        if (sample.length + failures.length >= SAMPLE_SIZE) break;
      }
      body.destroy();
      const message = failures.length
        ? `Read ${sample.length} record(s); unreadable: ${failures.join("; ")}`
        : `Read ${sample.length} record(s)`;
      return { ok: failures.length === 0, message, sampleRecords: sample };
    } finally {
      clearTimeout(timer);
      abort.abort();
    }
  }

  /** The source if the caller owns it (or is an admin) and it is not deleted; NOT_FOUND otherwise. */
  private async own(caller: Caller, id: string): Promise<Source> {
    const who = authorize(caller, WRITE);
    const source = await this.prisma.source.findUnique({ where: { id } });
    if (!source || source.deletedAt || (who.role !== "ADMIN" && source.accountId !== who.accountId)) {
      throw notFound("Source");
    }
    return source;
  }

  private seal(secrets: Record<string, unknown> | null): string | null {
    if (secrets === null || Object.keys(secrets).length === 0) return null;
    return this.encryption.encrypt(JSON.stringify(secrets));
  }

  private open(source: Source): Record<string, unknown> | null {
    if (source.secretsEncrypted === null) return null;
    return JSON.parse(this.encryption.decrypt(source.secretsEncrypted)) as Record<string, unknown>;
  }
}

/**
 * The stored fields of a source, after checking them all; BAD_USER_INPUT lists every problem.
 * Messages name fields, never secret values.
 */
function validate(
  type: SourceType,
  rawName: string,
  config: Record<string, unknown>,
  secrets: Record<string, unknown> | null,
  rawSchedule: string | null,
) {
  const problems: string[] = [];
  const name = rawName.trim();
  if (name.length < 1 || name.length > 200) problems.push("name: must be 1-200 characters");
  const schedule = rawSchedule?.trim() || null;
  if (schedule !== null) {
    if (!isCronExpression(schedule)) {
      problems.push("schedule: must be a cron expression of 5 fields, e.g. '0 3 * * *'");
    }
  }
  const secretsCheck = secretsSchema.safeParse(secrets ?? {});
  if (!secretsCheck.success) problems.push("secrets: must be an object of string values");
  const connector = connectorFor(type);
  if (connector) {
    problems.push(...connector.validate(config, secretsCheck.success ? secretsCheck.data : {}));
  } else if (type === "FILE") {
    const result = fileConfigSchema.safeParse(config);
    if (!result.success) {
      problems.push(...result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
    }
  }
  // Types without a connector yet keep any object as given, to be checked when theirs lands.
  if (problems.length) throw badInput(`Invalid source: ${problems.join("; ")}`, { problems });
  return { name, config: config as Prisma.InputJsonObject, schedule };
}

/** A second line of defence: no secret value survives into a message. */
function redact(message: string, secrets: Record<string, unknown>): string {
  let safe = message;
  for (const value of Object.values(secrets)) {
    if (typeof value === "string" && value.length >= 4) safe = safe.split(value).join("[redacted]");
  }
  return safe;
}
