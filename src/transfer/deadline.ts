// Bounded waits for remote transfers: a timeout per operation and per stalled read, and the
// caller's AbortSignal (a cancelled run, a stopping worker) ending either at once.
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { AppError } from "../errors.js";

export interface TransferOptions {
  /** Cancels connects, operations and streams in progress; they reject with an AbortError. */
  signal?: AbortSignal;
}

export const abortError = (signal: AbortSignal): Error =>
  signal.reason instanceof Error ? signal.reason : new DOMException("The transfer was aborted", "AbortError");

export const isAbortError = (error: unknown): boolean =>
  error instanceof Error && (error.name === "AbortError" || error.name === "TimeoutError");

/**
 * The operation's result, or SERVICE_UNAVAILABLE after `ms` (null: no timeout), or the abort
 * reason once `signal` fires. The operation itself is not stopped: callers close the connection.
 */
export async function withDeadline<T>(
  operation: Promise<T>,
  ms: number | null,
  signal: AbortSignal | undefined,
  action: string,
): Promise<T> {
  if (signal?.aborted) {
    operation.catch(() => undefined);
    throw abortError(signal);
  }
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const stop = new Promise<never>((_, reject) => {
    if (ms !== null) {
      timer = setTimeout(
        () => reject(new AppError("SERVICE_UNAVAILABLE", `Timed out after ${ms / 1000} s ${action}`)),
        ms,
      );
    }
    if (signal) {
      onAbort = () => reject(abortError(signal));
      signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  try {
    return await Promise.race([operation, stop]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal!.removeEventListener("abort", onAbort);
    operation.catch(() => undefined); // settled after we gave up on it: nobody else will look
  }
}

/**
 * The same bytes, failing when the source makes the reader wait longer than `idleMs` for a chunk
 * or when `signal` fires. Only the wait on the source is timed, never a slow consumer. Errors the
 * source raises pass through `mapError`. The source is destroyed when reading stops, for any
 * reason.
 */
export function guardStream(
  source: Readable | AsyncIterable<Buffer>,
  idleMs: number,
  signal: AbortSignal | undefined,
  mapError: (error: unknown) => Error = (error) => error as Error,
): Readable {
  async function* guarded(): AsyncGenerator<Buffer> {
    const iterator = source[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    try {
      for (;;) {
        let next: IteratorResult<Buffer>;
        try {
          next = await withDeadline(iterator.next(), idleMs, signal, "waiting for data");
        } catch (error) {
          throw error instanceof AppError || isAbortError(error) ? error : mapError(error);
        }
        if (next.done) return;
        yield next.value;
      }
    } finally {
      if (source instanceof Readable) source.destroy();
      else void iterator.return?.().catch(() => undefined);
    }
  }
  return Readable.from(guarded(), { objectMode: false });
}

/**
 * An upload body: the same bytes, guarded like {@link guardStream}, counted and hashed as they
 * pass, so the sender reports the size and SHA-256 of exactly what it sent.
 */
export function meteredUpload(
  body: Readable | AsyncIterable<Buffer>,
  idleMs: number,
  signal: AbortSignal | undefined,
): { stream: Readable; totals(): { bytes: number; sha256: string } } {
  const hash = createHash("sha256");
  let bytes = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of body) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      bytes += buffer.length;
      hash.update(buffer);
      yield buffer;
    }
  }
  return {
    stream: guardStream(counted(), idleMs, signal),
    totals: () => ({ bytes, sha256: hash.digest("hex") }),
  };
}
