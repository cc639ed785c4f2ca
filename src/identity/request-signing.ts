// Optional per-key request signatures, for clients that want proof a request was not altered
// (by a proxy, a log replayer, anyone who saw the API key): an HMAC-SHA256, under a signing
// secret that never travels, over the timestamp, method, path and a hash of the body.
//
//   X-Datahus-Timestamp: 1764082800
//   X-Datahus-Signature: v1=<hex HMAC-SHA256(signingSecret, "<timestamp>\n<METHOD>\n<path?query>\n<hex SHA-256(body)>")>
import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { AppError } from "../errors.js";

export const TIMESTAMP_HEADER = "x-datahus-timestamp";
export const SIGNATURE_HEADER = "x-datahus-signature";

export interface SignedRequest {
  method: string;
  /** Path and query string exactly as sent. */
  url: string;
  body: Buffer;
  timestamp?: string;
  signature?: string;
}

export const generateSigningSecret = () => `dhs_${randomBytes(32).toString("base64url")}`;

export function signatureBase(timestamp: string, method: string, url: string, body: Buffer | string): string {
  const bodyHash = createHash("sha256").update(body).digest("hex");
  return `${timestamp}\n${method.toUpperCase()}\n${url}\n${bodyHash}`;
}

export function sign(
  secret: string,
  timestamp: string,
  method: string,
  url: string,
  body: Buffer | string,
): string {
  return `v1=${createHmac("sha256", secret)
    .update(signatureBase(timestamp, method, url, body))
    .digest("hex")}`;
}

/**
 * Checks the signature and that the timestamp is within `toleranceSeconds` of now; returns the
 * signature so the caller can refuse a second use of it (replay) inside the window.
 */
export function verifySignedRequest(
  secret: string,
  request: SignedRequest,
  nowSeconds: number,
  toleranceSeconds: number,
): string {
  const { timestamp, signature } = request;
  if (!timestamp || !signature) {
    throw new AppError("UNAUTHENTICATED", "This API key requires signed requests", {
      requiredHeaders: [TIMESTAMP_HEADER, SIGNATURE_HEADER],
    });
  }
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > toleranceSeconds) {
    throw new AppError("UNAUTHENTICATED", "Request timestamp outside the allowed window", {
      toleranceSeconds,
    });
  }
  const expected = Buffer.from(sign(secret, timestamp, request.method, request.url, request.body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new AppError("UNAUTHENTICATED", "Invalid request signature");
  }
  return signature;
}
