// A delivery's secrets as stored: one AES-GCM blob (db/encryption.ts) holding what the user gave
// (passwords, keys, secret headers) and, for webhooks, our signing secret. Only the service that
// sends decrypts them; nothing here is ever logged or returned after creation.
import type { Encryption } from "../db/encryption.js";
import type { Delivery } from "../generated/prisma/client.js";

export interface StoredSecrets {
  /** WEBHOOK: `whsec_...`. */
  signingSecret?: string;
  /** WEBHOOK: headers sent with every call whose values are secret. */
  headers?: Record<string, string>;
  [key: string]: unknown;
}

/** Decrypted blobs kept: more than the deliveries one worker sends to at once. */
const OPENED_KEPT = 1_000;

export class DeliverySecrets {
  /**
   * Plaintexts by the ciphertext they came from. A send no longer pays an AES-GCM decryption (5% of
   * the webhook bench's CPU); a rotation or an edit stores a new ciphertext (a fresh IV each
   * time), so a changed secret is never served from here. The process holds the key anyway.
   */
  readonly #opened = new Map<string, string>();

  constructor(private readonly encryption: Encryption) {}

  seal(secrets: StoredSecrets): string | null {
    const present = Object.entries(secrets).filter(([, value]) => value !== undefined);
    if (present.length === 0) return null;
    return this.encryption.encrypt(JSON.stringify(Object.fromEntries(present)));
  }

  /** The previous signing secret during a rotation, on its own. */
  sealSigningSecret(secret: string): string {
    return this.encryption.encrypt(secret);
  }

  open(delivery: Pick<Delivery, "secretsEncrypted">): StoredSecrets {
    if (delivery.secretsEncrypted === null) return {};
    return JSON.parse(this.decrypt(delivery.secretsEncrypted)) as StoredSecrets;
  }

  /** The secrets a send signs with: the current one, and the previous one while its window lasts. */
  signingSecrets(
    delivery: Pick<Delivery, "secretsEncrypted" | "previousSecretEncrypted" | "previousSecretExpiresAt">,
    now: Date,
  ): string[] {
    const current = this.open(delivery).signingSecret;
    const secrets = current ? [current] : [];
    if (
      delivery.previousSecretEncrypted !== null &&
      delivery.previousSecretExpiresAt !== null &&
      delivery.previousSecretExpiresAt > now
    ) {
      secrets.push(this.decrypt(delivery.previousSecretEncrypted));
    }
    return secrets;
  }

  private decrypt(stored: string): string {
    let plain = this.#opened.get(stored);
    if (plain === undefined) {
      plain = this.encryption.decrypt(stored);
      // Oldest first out: a Map iterates in insertion order.
      if (this.#opened.size >= OPENED_KEPT) this.#opened.delete(this.#opened.keys().next().value!);
      this.#opened.set(stored, plain);
    }
    return plain;
  }
}
