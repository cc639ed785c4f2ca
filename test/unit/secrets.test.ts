import { describe, expect, it } from "vitest";
import { Encryption } from "../../src/db/encryption.js";
import { sign, verifySignedRequest } from "../../src/identity/request-signing.js";
import {
  generateApiKey,
  hashApiKey,
  hashPassword,
  looksLikeApiKey,
  signToken,
  verifyPassword,
  verifyToken,
} from "../../src/identity/secrets.js";

describe("passwords", () => {
  it("verify only the password they were made from", async () => {
    const stored = await hashPassword("correct horse battery staple");
    expect(stored).toMatch(/^scrypt\$32768\$8\$1\$/);
    expect(await verifyPassword("correct horse battery staple", stored)).toBe(true);
    expect(await verifyPassword("correct horse battery stapler", stored)).toBe(false);
    expect(await hashPassword("same")).not.toBe(await hashPassword("same"));
  });
});

describe("API keys", () => {
  it("have a public prefix and are stored as their SHA-256", () => {
    const { key, prefix, secretHash } = generateApiKey();
    expect(looksLikeApiKey(key)).toBe(true);
    expect(key.startsWith(`${prefix}_`)).toBe(true);
    expect(secretHash).toBe(hashApiKey(key));
    expect(secretHash).toMatch(/^[0-9a-f]{64}$/);
    expect(generateApiKey().key).not.toBe(key);
  });
});

describe("session tokens", () => {
  const secret = "s".repeat(40);
  const claims = { sub: "u", acc: "a", role: "BUYER" };

  it("verify until they expire", () => {
    const { token, expiresAt } = signToken(claims, secret, 900, 1_000_000);
    expect(expiresAt).toBe(1_000_900);
    expect(verifyToken(token, secret, 1_000_899)).toMatchObject(claims);
    expect(verifyToken(token, secret, 1_000_900)).toBeNull();
  });

  it("reject another secret, a changed payload and other algorithms", () => {
    const { token } = signToken(claims, secret, 900, 1_000_000);
    expect(verifyToken(token, "t".repeat(40), 1_000_001)).toBeNull();
    const [h, , sig] = token.split(".");
    const forged = Buffer.from(JSON.stringify({ ...claims, role: "ADMIN", iat: 1, exp: 9e9 })).toString(
      "base64url",
    );
    expect(verifyToken(`${h}.${forged}.${sig}`, secret, 1_000_001)).toBeNull();
    const none = Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url");
    expect(verifyToken(`${none}.${token.split(".")[1]}.`, secret, 1_000_001)).toBeNull();
  });
});

describe("encryption at rest", () => {
  const box = new Encryption(Buffer.alloc(32, 1).toString("base64"));

  it("round-trips and refuses tampered or foreign ciphertext", () => {
    const stored = box.encrypt("sftp password ✓");
    expect(stored).not.toContain("password");
    expect(box.decrypt(stored)).toBe("sftp password ✓");
    const parts = stored.split(".");
    parts[3] = Buffer.from("tampered").toString("base64url");
    expect(() => box.decrypt(parts.join("."))).toThrow();
    expect(() => new Encryption(Buffer.alloc(32, 2).toString("base64")).decrypt(stored)).toThrow();
  });
});

describe("request signatures", () => {
  const body = Buffer.from('{"query":"{ me { user { id } } }"}');
  const request = (signature: string, timestamp = "1000") => ({
    method: "POST",
    url: "/graphql",
    body,
    timestamp,
    signature,
  });

  it("accept the signature of the same request inside the window", () => {
    const signature = sign("k", "1000", "POST", "/graphql", body);
    expect(verifySignedRequest("k", request(signature), 1100, 300)).toBe(signature);
  });

  it("reject another key, path, body or a stale timestamp", () => {
    const signature = sign("k", "1000", "POST", "/graphql", body);
    expect(() => verifySignedRequest("other", request(signature), 1000, 300)).toThrow(
      /Invalid request signature/,
    );
    expect(() => verifySignedRequest("k", { ...request(signature), url: "/graphql?x=1" }, 1000, 300)).toThrow(
      /Invalid/,
    );
    expect(() =>
      verifySignedRequest("k", { ...request(signature), body: Buffer.from("{}") }, 1000, 300),
    ).toThrow(/Invalid/);
    expect(() => verifySignedRequest("k", request(signature), 1301, 300)).toThrow(/window/);
  });
});
