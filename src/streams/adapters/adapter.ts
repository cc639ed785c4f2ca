// The contract between the stream consumer engine (stream.engine.ts) and one broker. An adapter
// hands each message it receives to a sink and acknowledges messages only when the engine says
// they are stored; what it never acknowledges the broker delivers again (after a crash, to the
// next consumer). Backpressure: the sink's push() resolves only when there is room (NATS, Kafka
// wait for it), RabbitMQ is held to as many unacknowledged messages as the sink holds (prefetch);
// MQTT takes what the broker sends, as Mosquitto drops what it cannot queue (mqtt.adapter.ts).

export interface StreamMessage {
  /** The broker's id of the message, when it gives one that survives re-delivery. */
  id: string | null;
  /** Where it came from: topic, subject, queue. */
  origin: string;
  body: Uint8Array;
  /** The adapter's own handle, for ack(). */
  handle: unknown;
}

export interface MessageSink {
  /** Takes a message; the promise resolves when the next one may come. */
  push(message: StreamMessage): Promise<void>;
  /** The adapter lost its connection for good (it reconnects on its own otherwise). */
  fail(error: Error): void;
}

export interface StreamAdapter {
  /** Connects and starts delivering to the sink; rejects when the broker cannot be reached. */
  start(sink: MessageSink): Promise<void>;
  /** Acknowledges (commits) messages the engine stored, in the order they were pushed. */
  ack(messages: readonly StreamMessage[]): Promise<void>;
  /**
   * Messages waiting at the broker for this consumer, not counting those delivered and not yet
   * acknowledged (the engine counts those); null when the broker cannot tell (MQTT).
   */
  lag(): Promise<number | null>;
  /** Stops delivering and disconnects; unacknowledged messages go back to the broker. */
  close(): Promise<void>;
}

/**
 * A bounded queue between an adapter (push) and the engine (take). push() waits while `capacity`
 * messages are waiting; take() gives up to `max` messages once that many are there or `waitMs`
 * after the first arrived, whichever comes first.
 */
export class MessageBuffer implements MessageSink {
  private readonly items: StreamMessage[] = [];
  private readonly roomWaiters: (() => void)[] = [];
  private dataWaiter: (() => void) | null = null;
  private failure: Error | null = null;
  private closed = false;

  constructor(readonly capacity: number) {}

  get size(): number {
    return this.items.length;
  }

  push(message: StreamMessage): Promise<void> {
    this.items.push(message);
    this.wake();
    if (this.items.length < this.capacity || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.roomWaiters.push(resolve));
  }

  fail(error: Error): void {
    this.failure = error;
    this.wake();
  }

  /** Ends every wait: take() returns what is there, push() returns at once. */
  close(): void {
    this.closed = true;
    this.wake();
    for (const resolve of this.roomWaiters.splice(0)) resolve();
  }

  async take(max: number, waitMs: number): Promise<StreamMessage[]> {
    // Wait for a first message, then up to waitMs for the batch to fill.
    while (!this.items.length && !this.closed && !this.failure) await this.nextPush(null);
    if (this.failure) throw this.failure;
    const deadline = Date.now() + waitMs;
    while (this.items.length < max && !this.closed && !this.failure) {
      const left = deadline - Date.now();
      if (left <= 0) break;
      await this.nextPush(left);
    }
    const batch = this.items.splice(0, max);
    while (this.roomWaiters.length && this.items.length < this.capacity) this.roomWaiters.shift()!();
    return batch;
  }

  private nextPush(timeoutMs: number | null): Promise<void> {
    return new Promise((resolve) => {
      const timer = timeoutMs === null ? null : setTimeout(() => this.wake(), timeoutMs);
      this.dataWaiter = () => {
        if (timer) clearTimeout(timer);
        resolve();
      };
    });
  }

  private wake(): void {
    const waiter = this.dataWaiter;
    this.dataWaiter = null;
    waiter?.();
  }
}
