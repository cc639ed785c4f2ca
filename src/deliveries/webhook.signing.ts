// Standard Webhooks signatures (https://www.standardwebhooks.com): a `whsec_` secret, and for each
// message `v1,` + base64(HMAC-SHA256(secret bytes, `${id}.${timestamp}.${body}`)). Pure: the clock
// and the randomness come in as arguments.
import { createHmac, randomBytes } from "node:crypto";

const PREFIX = "whsec_";
/** The spec asks for 24 to 64 bytes; 32 matches the HMAC-SHA256 block strength. */
const SECRET_BYTES = 32;

export function newSigningSecret(random: (size: number) => Buffer = randomBytes): string {
  return PREFIX + random(SECRET_BYTES).toString("base64");
}

export function isSigningSecret(value: string): boolean {
  if (!value.startsWith(PREFIX)) return false;
  return Buffer.from(value.slice(PREFIX.length), "base64").length >= 24;
}

/** One `v1,<base64>` signature of a message. */
export function sign(secret: string, messageId: string, timestampSeconds: number, body: string): string {
  if (!isSigningSecret(secret)) throw new Error("not a whsec_ signing secret");
  const key = Buffer.from(secret.slice(PREFIX.length), "base64");
  const mac = createHmac("sha256", key).update(`${messageId}.${timestampSeconds}.${body}`).digest("base64");
  return `v1,${mac}`;
}

/**
 * The three headers of one send. Several secrets (during a rotation) give several signatures,
 * space-separated, as the spec allows: a receiver holding either secret verifies the message.
 */
export function webhookHeaders(
  messageId: string,
  now: Date,
  body: string,
  secrets: readonly string[],
): Record<"webhook-id" | "webhook-timestamp" | "webhook-signature", string> {
  if (secrets.length === 0) throw new Error("at least one signing secret is needed");
  const timestamp = Math.floor(now.getTime() / 1000);
  return {
    "webhook-id": messageId,
    "webhook-timestamp": String(timestamp),
    "webhook-signature": secrets.map((secret) => sign(secret, messageId, timestamp, body)).join(" "),
  };
}
