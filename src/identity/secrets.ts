// Pure credential primitives: password hashing, API key material, JWTs. No I/O, clock passed in.
import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual } from "node:crypto";
import { promisify } from "node:util";

const scrypt = promisify(scryptCb) as (
  password: string,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;

// scrypt with N=2^15, r=8, p=1: ~50 ms and 32 MiB per hash on this class of machine (OWASP's
// minimum is N=2^17 with r=8 for new systems; we trade that for login latency on 2 cores).
const SCRYPT = { N: 2 ** 15, r: 8, p: 1, maxmem: 64 * 1024 * 1024 };
const KEY_LENGTH = 32;

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const hash = await scrypt(password.normalize("NFKC"), salt, KEY_LENGTH, SCRYPT);
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64"), hash.toString("base64")].join("$");
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = await scrypt(password.normalize("NFKC"), Buffer.from(salt, "base64"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
    maxmem: SCRYPT.maxmem,
  });
  return timingSafeEqual(actual, expected);
}

/** A stored hash nobody's password matches, to spend the same time on unknown emails. */
export const DUMMY_PASSWORD_HASH =
  "scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";

/**
 * API keys look like `dh_k3j5x9q2mw_<43 chars>`: the part before the last underscore is the
 * public prefix shown in listings; the whole key is hashed with SHA-256 and only the hash is
 * stored. SHA-256 (not scrypt) is right here: the secret has 256 bits of entropy, so a fast hash
 * cannot be brute-forced, and every request must verify it.
 */
export interface NewApiKey {
  key: string;
  prefix: string;
  secretHash: string;
}

const PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

export function generateApiKey(): NewApiKey {
  const prefixBytes = randomBytes(10);
  const prefix = `dh_${[...prefixBytes].map((b) => PREFIX_ALPHABET[b % PREFIX_ALPHABET.length]).join("")}`;
  const key = `${prefix}_${randomBytes(32).toString("base64url")}`;
  return { key, prefix, secretHash: hashApiKey(key) };
}

export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export const looksLikeApiKey = (value: string) => /^dh_[a-z2-9]{10}_[A-Za-z0-9_-]{43}$/.test(value);

/** The claims of a dashboard session token. */
export interface TokenClaims {
  sub: string; // user id
  acc: string; // account id
  role: string;
  iat: number;
  exp: number;
}

const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
const JWT_HEADER = b64({ alg: "HS256", typ: "JWT" });

export function signToken(
  claims: Omit<TokenClaims, "iat" | "exp">,
  secret: string,
  ttlSeconds: number,
  nowSeconds: number,
): { token: string; expiresAt: number } {
  const exp = nowSeconds + ttlSeconds;
  const body = `${JWT_HEADER}.${b64({ ...claims, iat: nowSeconds, exp })}`;
  const signature = createHmac("sha256", secret).update(body).digest("base64url");
  return { token: `${body}.${signature}`, expiresAt: exp };
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/** Unpadded base64url that re-encodes to itself (no stray characters, no dangling bits). */
function isCanonicalBase64url(text: string): boolean {
  return (
    BASE64URL.test(text) &&
    text.length % 4 !== 1 &&
    Buffer.from(text, "base64url").toString("base64url") === text
  );
}

/** The claims of a valid, unexpired HS256 token signed with `secret`; null for anything else. */
export function verifyToken(token: string, secret: string, nowSeconds: number): TokenClaims | null {
  const parts = token.split(".");
  if (parts.length !== 3 || parts[0] !== JWT_HEADER) return null;
  const expected = createHmac("sha256", secret).update(`${parts[0]}.${parts[1]}`).digest();
  // Node's decoder skips characters outside the alphabet, padding and a last character's unused
  // bits, so several strings decode to one signature: only the canonical encoding is accepted.
  if (!isCanonicalBase64url(parts[1]!) || !isCanonicalBase64url(parts[2]!)) return null;
  const given = Buffer.from(parts[2]!, "base64url");
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
  let claims: Partial<TokenClaims>;
  try {
    claims = JSON.parse(Buffer.from(parts[1]!, "base64url").toString("utf8")) as Partial<TokenClaims>;
  } catch {
    return null;
  }
  const { sub, acc, role, iat, exp } = claims;
  if (typeof sub !== "string" || typeof acc !== "string" || typeof role !== "string") return null;
  if (typeof exp !== "number" || typeof iat !== "number" || exp <= nowSeconds) return null;
  return { sub, acc, role, iat, exp };
}
