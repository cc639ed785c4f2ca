// The settings of each kind of delivery, checked in full before anything is stored: every problem
// is listed at once (BAD_USER_INPUT with `problems`), and messages name fields, never values.
import { z } from "zod";
import { badInput } from "../errors.js";
import type {
  DeliveryFormat,
  DeliveryKind,
  DeliveryMode,
  DeliveryTrigger,
} from "../generated/prisma/client.js";
import { isCronExpression } from "../sources/source.service.js";
import { s3CredentialsSchema, sftpCredentialsSchema } from "../transfer/settings.js";
import { s3DropConfigSchema, sftpDropConfigSchema } from "./drops/index.js";
import { PUBLISHER_EVENT_TYPES, isWebhookEventType } from "./webhook.envelope.js";

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Set by us on every send; a user's header must not replace them.
const RESERVED_HEADERS =
  /^(webhook-.*|content-type|content-length|host|transfer-encoding|connection|user-agent)$/i;

const headers = z.record(z.string(), z.string().max(8192)).superRefine((entries, ctx) => {
  if (Object.keys(entries).length > 20) ctx.addIssue({ code: "custom", message: "at most 20 headers" });
  for (const [name, value] of Object.entries(entries)) {
    if (!HEADER_NAME.test(name))
      ctx.addIssue({ code: "custom", path: [name], message: "is not a valid header name" });
    else if (RESERVED_HEADERS.test(name))
      ctx.addIssue({ code: "custom", path: [name], message: "is set by Datahus" });
    if (/[\r\n\0]/.test(value)) ctx.addIssue({ code: "custom", path: [name], message: "must be one line" });
  }
});

const httpUrl = z
  .url({ protocol: /^https?$/, error: "must be an http or https URL" })
  .max(2048)
  .refine((url) => !URL.canParse(url) || (!new URL(url).username && !new URL(url).password), {
    message: "must not carry credentials (use headers in secrets)",
  });

const KIND_SCHEMAS = {
  WEBHOOK: {
    config: z.strictObject({ url: httpUrl, headers: headers.optional() }),
    // Headers whose values are secret (an Authorization token): encrypted, sent with every call.
    secrets: z.strictObject({ headers: headers.optional() }),
  },
  // File drops take the drop engine's own settings (drops/targets.ts), so what is accepted here is
  // exactly what a drop can use.
  SFTP: { config: sftpDropConfigSchema, secrets: sftpCredentialsSchema },
  S3: { config: s3DropConfigSchema, secrets: s3CredentialsSchema },
} as const;

export interface DeliverySettings {
  kind: DeliveryKind;
  config: Record<string, unknown>;
  /** What the user gave as secrets (webhooks: extra headers); the signing secret is ours. */
  secrets: Record<string, unknown> | null;
  format: DeliveryFormat | null;
  gzip: boolean;
  trigger: DeliveryTrigger;
  schedule: string | null;
  mode: DeliveryMode;
  eventTypes: string[];
}

/**
 * The settings to store, normalised (defaults filled in), or BAD_USER_INPUT listing every problem.
 * `owner`: the caller publishes the dataset, so it may hear about its pipeline runs.
 */
export function validateSettings(input: DeliverySettings, owner: boolean): DeliverySettings {
  const problems: string[] = [];
  const schemas = KIND_SCHEMAS[input.kind];
  const parse = <T>(schema: z.ZodType<T>, value: unknown, field: string): T | null => {
    const result = schema.safeParse(value);
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      problems.push(`${[field, ...issue.path].join(".")}: ${issue.message}`);
    }
    return null;
  };
  const config = parse(schemas.config as z.ZodType<Record<string, unknown>>, input.config, "config");
  const secrets = parse(
    schemas.secrets as z.ZodType<Record<string, unknown>>,
    input.secrets ?? {},
    "secrets",
  );
  const schedule = input.schedule?.trim() || null;
  const eventTypes = [...new Set(input.eventTypes)];

  if (input.kind === "WEBHOOK") {
    if (input.format !== null) problems.push("format: webhooks carry JSON events; leave it out");
    if (input.gzip) problems.push("gzip: not used by webhooks");
    if (input.trigger !== "ON_UPDATE")
      problems.push("trigger: webhooks are sent when events happen (ON_UPDATE)");
    for (const type of eventTypes) {
      if (!isWebhookEventType(type)) problems.push(`eventTypes: unknown event type ${JSON.stringify(type)}`);
      else if (!owner && PUBLISHER_EVENT_TYPES.includes(type)) {
        problems.push(`eventTypes: ${type} is only for the dataset's publisher`);
      }
    }
  } else {
    if (input.format === null) problems.push("format: is required (CSV, NDJSON or PARQUET)");
    else if (input.format === "JSON") problems.push("format: file drops are CSV, NDJSON or PARQUET");
    if (eventTypes.length) problems.push("eventTypes: only webhooks subscribe to event types");
  }
  if (input.trigger === "SCHEDULE" && schedule === null) problems.push("schedule: is required for SCHEDULE");
  if (input.trigger === "ON_UPDATE" && schedule !== null)
    problems.push("schedule: only with trigger SCHEDULE");
  if (schedule !== null && !isCronExpression(schedule)) {
    problems.push("schedule: must be a cron expression of 5 fields, e.g. '0 3 * * *'");
  }
  if (problems.length) throw badInput(`Invalid delivery: ${problems.join("; ")}`, { problems });
  return { ...input, config: config!, secrets: secrets!, schedule, eventTypes };
}
