// Sources: where a publisher's data comes from. The non-secret settings are stored as given
// (and shown); the credentials are encrypted at rest and only decrypted to talk to the source.
import { z } from "zod";
import { ModelReader, type ModelDelegate } from "../db/model-reader.js";
import type { Encryption } from "../db/encryption.js";
import { AppError, badInput, notFound } from "../errors.js";
import type { Prisma, PrismaClient, Source, SourceType } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PageLimits } from "../pagination.js";
import { connectorFor, type ConnectorSettings } from "./connectors/registry.js";
import type { ConnectorLog } from "./connectors/types.js";

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
    private readonly connectorSettings: ConnectorSettings = {},
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
    const fields = validate(
      input.type,
      input.name,
      input.config,
      secrets,
      input.schedule ?? null,
      this.connectorSettings,
    );
    await this.checkTargets(input.type, input.config);
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
      this.connectorSettings,
    );
    await this.checkTargets(source.type, fields.config as Record<string, unknown>);
    return this.prisma.source.update({
      where: { id: source.id },
      data: {
        ...fields,
        ...(input.secrets === undefined ? {} : { secretsEncrypted: this.seal(input.secrets) }),
      },
    });
  }

  /** A server the outbound policy refuses is an input error now, not a failed sync later. */
  private async checkTargets(type: SourceType, config: Record<string, unknown>): Promise<void> {
    await connectorFor(type, this.connectorSettings)?.checkTargets?.(config);
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
    const connector = connectorFor(source.type, this.connectorSettings);
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

  /** The source's decrypted secrets, for the worker that syncs it. Never log or return them. */
  secretsOf(source: Pick<Source, "secretsEncrypted">): Record<string, string> {
    return (this.open(source) ?? {}) as Record<string, string>;
  }

  private open(source: Pick<Source, "secretsEncrypted">): Record<string, unknown> | null {
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
  settings: ConnectorSettings,
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
  const connector = connectorFor(type, settings);
  if (connector) {
    problems.push(...connector.validate(config, secretsCheck.success ? secretsCheck.data : {}));
  }
  // Types without a connector yet keep any object as given, to be checked when theirs lands.
  if (problems.length) throw badInput(`Invalid source: ${problems.join("; ")}`, { problems });
  return { name, config: config as Prisma.InputJsonObject, schedule };
}

/** A second line of defence: no secret value survives into a message. */
export function redact(message: string, secrets: Record<string, unknown>): string {
  let safe = message;
  for (const value of Object.values(secrets)) {
    if (typeof value === "string" && value.length >= 4) safe = safe.split(value).join("[redacted]");
  }
  return safe;
}
