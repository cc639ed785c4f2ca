// Authenticated callers, remembered in the process for a short time so that a request costs no
// PostgreSQL trip to say who is calling. Correctness does not rest on the time: every change that
// takes access away or alters it (a key revoked or rotated, an account suspended, a plan changed)
// publishes `access.revoked`, which every API process hears (over Redis, or in process without
// it) and answers by forgetting that account's callers at once. The time only bounds how long a
// lost message could matter. `lastUsedAt` writes are collected here and written in batches.
import type { AuthenticatedCaller } from "./caller.js";

interface Entry<T> {
  accountId: string;
  value: T;
  /** Epoch ms after which the entry is not used: the cache time or the credential's own end. */
  until: number;
}

export class IdentityCache<T extends { caller: AuthenticatedCaller }> {
  private readonly entries = new Map<string, Entry<T>>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** The remembered value for a credential digest, while it is fresh. */
  get(digest: string): T | undefined {
    const entry = this.entries.get(digest);
    if (!entry) return undefined;
    if (entry.until <= this.now()) {
      this.entries.delete(digest);
      return undefined;
    }
    return entry.value;
  }

  /** Remembers `value` until the cache time passes or `endsAt` (the credential's own end), whichever is first. */
  set(digest: string, value: T, endsAt: Date | null = null): void {
    if (this.ttlMs === 0) return;
    const until = Math.min(this.now() + this.ttlMs, endsAt?.getTime() ?? Infinity);
    this.entries.delete(digest);
    // Oldest first out: a Map iterates in insertion order.
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(digest, { accountId: value.caller.accountId, value, until });
  }

  /** Forgets every caller of the account (access changed for it somewhere). */
  forgetAccount(accountId: string): void {
    for (const [digest, entry] of this.entries) {
      if (entry.accountId === accountId) this.entries.delete(digest);
    }
  }

  /** Forgets everyone. */
  clear(): void {
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}

/**
 * Marks API keys as used, written at most once per `resolutionMs` per key and in one statement
 * for all keys used since the last write (`flush`), off the request path.
 */
export class LastUsedBatch {
  private readonly pending = new Map<string, Date>();
  private readonly marked = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly write: (ids: string[], at: Date) => Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly resolutionMs = 60_000,
    private readonly flushMs = 5_000,
  ) {}

  /** Notes a use of the key at `at`; `stored` is the lastUsedAt the key row had when read. */
  mark(keyId: string, at: Date, stored: Date | null): void {
    const last = this.marked.get(keyId) ?? stored?.getTime() ?? 0;
    if (at.getTime() - last <= this.resolutionMs) return;
    this.marked.set(keyId, at.getTime());
    this.pending.set(keyId, at);
    this.timer ??= setTimeout(() => void this.flush(), this.flushMs).unref();
  }

  /** Writes the uses noted so far. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.pending.size === 0) return;
    const ids = [...this.pending.keys()];
    const at = new Date(Math.max(...[...this.pending.values()].map((d) => d.getTime())));
    this.pending.clear();
    try {
      await this.write(ids, at);
    } catch (err) {
      this.onError(err);
    }
  }
}
