// A graphql-ws client on a test stack, the way a partner connects: `createClient` with `ws` as
// its WebSocket, credentials in connection_init. Results are queued so a test can await them.
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print, type FormattedExecutionResult } from "graphql";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import type { TestStack } from "./stack.js";

export interface Closed {
  code: number;
  reason: string;
}

export interface LiveClient {
  client: Client;
  /** Resolves once the server acknowledged connection_init. */
  connected: Promise<void>;
  /** Resolves when the socket closes, with the server's code and reason. */
  closed: Promise<Closed>;
  subscribe<TData, TVars>(
    document: TypedDocumentNode<TData, TVars>,
    variables: TVars,
  ): LiveSubscription<TData>;
  dispose(): Promise<void>;
}

export interface LiveSubscription<TData> {
  /** The next result, waiting up to `ms`. */
  next(ms?: number): Promise<FormattedExecutionResult<TData, unknown>>;
  /** Results received and not taken by next() yet. */
  readonly pending: FormattedExecutionResult<TData, unknown>[];
  /** Set when the server ended the subscription with an `error` message. */
  readonly error: unknown;
  /** Resolves when the subscription ends (complete, error or closed socket). */
  ended: Promise<void>;
  unsubscribe(): void;
}

export function liveClient(
  stack: TestStack,
  connectionParams: Record<string, unknown>,
  /** Headers of the upgrade request (signed requests); the credentials go in connectionParams. */
  upgradeHeaders?: Record<string, string>,
): LiveClient {
  let onConnected!: () => void;
  let onClosed!: (closed: Closed) => void;
  const connected = new Promise<void>((resolve) => (onConnected = resolve));
  const closed = new Promise<Closed>((resolve) => (onClosed = resolve));
  const client = createClient({
    url: `${stack.url.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: upgradeHeaders
      ? class extends WebSocket {
          constructor(url: string, protocols?: string | string[]) {
            super(url, protocols, { headers: upgradeHeaders });
          }
        }
      : WebSocket,
    connectionParams,
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {},
    on: {
      connected: () => onConnected(),
      closed: (event) => {
        const { code, reason } = event as { code: number; reason: string };
        onClosed({ code, reason: String(reason) });
      },
    },
  });
  return {
    client,
    connected,
    closed,
    subscribe(document, variables) {
      return subscribeWith(client, document, variables);
    },
    async dispose() {
      await client.dispose();
    },
  };
}

function subscribeWith<TData, TVars>(
  client: Client,
  document: TypedDocumentNode<TData, TVars>,
  variables: TVars,
): LiveSubscription<TData> {
  const queue: FormattedExecutionResult<TData, unknown>[] = [];
  const waiters: ((result: FormattedExecutionResult<TData, unknown>) => void)[] = [];
  let error: unknown;
  let onEnded!: () => void;
  const ended = new Promise<void>((resolve) => (onEnded = resolve));
  const unsubscribe = client.subscribe<TData>(
    { query: print(document), variables: variables as Record<string, unknown> },
    {
      next: (result) => {
        const waiter = waiters.shift();
        if (waiter) waiter(result);
        else queue.push(result);
      },
      error: (err) => {
        error = err;
        onEnded();
      },
      complete: () => onEnded(),
    },
  );
  return {
    get pending() {
      return queue;
    },
    get error() {
      return error;
    },
    ended,
    unsubscribe,
    next(ms = 5000) {
      const ready = queue.shift();
      if (ready) return Promise.resolve(ready);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms);
        waiters.push((result) => {
          clearTimeout(timer);
          resolve(result);
        });
      });
    },
  };
}

/** Waits until `condition` holds, polling; fails after `ms`. */
export async function until(condition: () => boolean, ms = 5000, what = "condition"): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
