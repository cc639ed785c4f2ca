// The validated settings of SFTP servers and S3 buckets, shared by sources (reading) and file
// drops (writing). Credentials are separate schemas: they are stored encrypted, apart from the
// settings, which are strict so a credential pasted among them is refused rather than kept.
import { z } from "zod";
import { AppError } from "../errors.js";
import type { S3Location } from "./s3.js";
import type { SftpEndpoint } from "./sftp.js";

const timeoutMs = z.int().min(1_000).max(600_000).default(30_000);

export const sftpEndpointFields = {
  host: z
    .string()
    .min(1)
    .max(255)
    .regex(/^[A-Za-z0-9.:[\]-]+$/, "must be a host name or IP address, without scheme or port"),
  port: z.int().min(1).max(65_535).default(22),
  username: z.string().min(1).max(128),
  /** `SHA256:…` from `ssh-keygen -l -f host_key.pub`; recommended, so a spoofed server is refused. */
  hostKeyFingerprint: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, "must look like SHA256:<43 base64 characters>")
    .optional(),
  /** Connecting, each operation, each stall of a transfer. @default 30000 */
  timeoutMs,
};

export const sftpCredentialsSchema = z
  .strictObject({
    password: z.string().min(1).optional(),
    privateKey: z.string().min(1).optional(),
    passphrase: z.string().min(1).optional(),
  })
  .refine((s) => s.password !== undefined || s.privateKey !== undefined, {
    message: "password or privateKey is required",
  })
  .refine((s) => s.passphrase === undefined || s.privateKey !== undefined, {
    message: "passphrase is only used with privateKey",
    path: ["passphrase"],
  });

export const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

export const s3LocationFields = {
  /** S3-compatible stores (MinIO, R2, Ceph): their URL. Unset: AWS S3 for `region`. */
  endpoint: z.url({ protocol: /^https?$/, error: "must be an http or https URL" }).optional(),
  region: z.string().min(1).max(64).default("us-east-1"),
  bucket: z
    .string()
    .regex(S3_BUCKET_NAME, "must be a bucket name: 3-63 lower-case letters, digits, dots, hyphens"),
  /** Unset: path style with a custom endpoint, virtual-host style on AWS. */
  forcePathStyle: z.boolean().optional(),
  timeoutMs,
};

export const s3CredentialsSchema = z.strictObject({
  accessKeyId: z.string({ error: "is required" }).min(1, "is required"),
  secretAccessKey: z.string({ error: "is required" }).min(1, "is required"),
  sessionToken: z.string().min(1).optional(),
});

type SftpEndpointSettings = z.output<z.ZodObject<typeof sftpEndpointFields>>;
type S3LocationSettings = z.output<z.ZodObject<typeof s3LocationFields>>;

export function sftpEndpoint(config: SftpEndpointSettings): SftpEndpoint {
  const { host, port, username, hostKeyFingerprint, timeoutMs } = config;
  return { host, port, username, hostKeyFingerprint, timeoutMs };
}

export function s3Location(config: S3LocationSettings): S3Location {
  return {
    endpoint: config.endpoint,
    region: config.region,
    bucket: config.bucket,
    forcePathStyle: config.forcePathStyle ?? config.endpoint !== undefined,
    timeoutMs: config.timeoutMs,
  };
}

/** "field: message" lines for every problem zod found. */
export const problemsOf = (error: z.ZodError): string[] =>
  error.issues.map((issue) => `${issue.path.join(".") || "(root)"}: ${issue.message}`);

/** The parsed value, or BAD_USER_INPUT listing every problem (names fields, never values). */
export function parseOrThrow<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const problems = problemsOf(parsed.error);
  throw new AppError("BAD_USER_INPUT", `Invalid ${what}: ${problems.join("; ")}`, { problems });
}
