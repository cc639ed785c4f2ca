// The demo buyer's API key, derived from JWT_SECRET instead of drawn at random. Only a key's hash is
// stored, so a random key could be shown once, on the first seed; a derived one is the same on
// every run and every seed can print it again. It reveals nothing new: whoever holds JWT_SECRET can
// already sign sessions for any user. Changing JWT_SECRET changes the key (the next seed adds it).
import { createHmac } from "node:crypto";
import { hashApiKey, looksLikeApiKey, type NewApiKey } from "../identity/secrets.js";

// The alphabet of key prefixes in identity/secrets.ts (no 0/1/l/o).
const PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789";

/** Pure: the same secret and label always give the same key. */
export function deriveDemoApiKey(jwtSecret: string, label = "demo-buyer"): NewApiKey {
  const mac = (purpose: string) =>
    createHmac("sha256", jwtSecret).update(`datahus demo api key\n${label}\n${purpose}`).digest();
  const prefix = `dh_${[...mac("prefix").subarray(0, 10)].map((b) => PREFIX_ALPHABET[b % 32]).join("")}`;
  const key = `${prefix}_${mac("secret").toString("base64url")}`;
  // Fails here, not at the first request, if the key format in secrets.ts ever changes.
  if (!looksLikeApiKey(key)) throw new Error("The derived demo key does not have the API key format");
  return { key, prefix, secretHash: hashApiKey(key) };
}
