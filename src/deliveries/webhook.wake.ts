// The loops that send queued first tries (WebhookDispatcher.sendQueued) in a worker, and what
// wakes them: a NOTIFY on WAKE_CHANNEL from the statement that queued the tries, heard on a
// connection of its own, with a poll as the backstop (a lost connection, a lease run out).
import pg from "pg";
import { pgTarget } from "../db/postgres-migrate.js";
import type { Logger } from "../observability/logger.js";

/**
 * A doorbell: `ring` wakes every loop waiting, and a loop that was busy when it rang does not
 * wait at all (it compares the count it saw before its last claim).
 */
export class Wake {
  #rings = 0;
  #waiting = new Set<() => void>();

  get rings(): number {
    return this.#rings;
  }

  ring(): void {
    this.#rings++;
    for (const wake of this.#waiting) wake();
  }

  /** Resolves at the next ring (at once if one came after `seen`), or after `ms`. */
  wait(seen: number, ms: number): Promise<void> {
    if (this.#rings !== seen) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }
}

export interface PumpOptions {
  /** Loops claiming at once: one sends a batch while another claims and records. */
  loops: number;
  /** Tries per claim; a claim that comes back full is followed by another at once. */
  batch: number;
  /** The backstop: how long an idle loop waits for a ring before claiming anyway. */
  pollMs: number;
}

/** Runs `claim` in `loops` loops until stopped; each returns how many tries it took. */
export class Pump {
  readonly wake = new Wake();
  #stopped = false;
  #loops: Promise<void>[] = [];

  constructor(
    private readonly claim: (limit: number) => Promise<number>,
    private readonly options: PumpOptions,
    private readonly log: Pick<Logger, "error">,
  ) {}

  start(): void {
    for (let i = 0; i < this.options.loops; i++) this.#loops.push(this.#loop());
  }

  /** Ends the loops once their current batch is recorded. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.wake.ring();
    await Promise.all(this.#loops);
  }

  async #loop(): Promise<void> {
    const { batch, pollMs } = this.options;
    while (!this.#stopped) {
      const seen = this.wake.rings;
      const taken = await this.claim(batch).catch((error: unknown) => {
        // The tries were given back (or their lease runs out); a later claim makes them.
        this.log.error({ err: error }, "webhook tries failed");
        return -1;
      });
      if (taken < 0) await new Promise((resolve) => setTimeout(resolve, pollMs));
      else if (taken < batch && !this.#stopped) await this.wake.wait(seen, pollMs);
    }
  }
}

/**
 * Rings `wake` on each NOTIFY on `channel`, over a connection of its own to `databaseUrl`; a lost
 * connection is opened again (and rings, for what was queued meanwhile). Returns its stop.
 */
export async function listen(
  databaseUrl: string,
  channel: string,
  wake: Wake,
  log: Pick<Logger, "warn">,
  retryMs = 1000,
): Promise<() => Promise<void>> {
  let client: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const next = new pg.Client(pgTarget(databaseUrl).pool);
    next.on("notification", () => wake.ring());
    next.on("error", (err) => {
      log.warn({ err }, "webhook wake-up connection lost");
      void next.end().catch(() => {});
      if (client === next) client = undefined;
      if (!stopped) retry = setTimeout(() => void connect().catch(again), retryMs);
    });
    await next.connect();
    await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
    if (stopped) return void (await next.end());
    client = next;
    wake.ring();
  };
  const again = (err: unknown) => {
    log.warn({ err }, "webhook wake-up connection failed");
    if (!stopped) retry = setTimeout(() => void connect().catch(again), retryMs);
  };
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    await client?.end();
  };
}
