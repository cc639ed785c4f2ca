// Who may follow what, live: the rules behind the three subscriptions, and the streams of events
// they read from Redis (events/live-channels.ts). Access is checked when a client subscribes
// (refused there with the error a read would get, never by silence) and again before an event is
// passed on once the last check is older than the recheck interval, so a lapsed purchase or a
// moved pipeline stops the stream.
import { AppError, notFound } from "../errors.js";
import type { AccessRevoked, DatasetUpdated, DeliveryUpdated, PipelineRunUpdated } from "../events/events.js";
import {
  ACCESS_CHANNEL,
  liveChannel,
  type LiveChannels,
  type LiveEvent,
  type LivePubSub,
} from "../events/live-channels.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import { authorize } from "../identity/authorization.js";
import type { Caller } from "../identity/caller.js";
import type { PipelineService } from "../pipelines/pipeline.service.js";
import type { ReadService } from "../records/read.service.js";

export interface LiveOptions {
  /** The installation's Redis prefix, part of every channel name. */
  prefix: string;
  recheckMs: number;
  now?: () => number;
}

type Check = () => Promise<void>;

export class LiveService {
  #active = 0;
  readonly #now: () => number;

  constructor(
    private readonly pubSub: LivePubSub,
    /** To know when a subscription is confirmed, and to hear revocations. */
    private readonly channels: Pick<LiveChannels, "confirm" | "listen">,
    private readonly reads: ReadService,
    private readonly pipelines: PipelineService,
    private readonly prisma: PrismaClient,
    private readonly options: LiveOptions,
  ) {
    this.#now = options.now ?? Date.now;
  }

  /** Subscriptions open in this process and listening. */
  get active(): number {
    return this.#active;
  }

  /** Changes of a dataset the caller may read records of (a PURCHASED one needs an active purchase). */
  async datasetUpdated(caller: Caller, datasetId: string): Promise<AsyncIterableIterator<DatasetUpdated>> {
    return this.follow<DatasetUpdated>("dataset.updated", datasetId, () =>
      this.reads.checkReadable(caller, datasetId),
    );
  }

  /** Status and progress of a pipeline's runs, for its publisher (or an admin). */
  async pipelineRunUpdated(
    caller: Caller,
    pipelineId: string,
  ): Promise<AsyncIterableIterator<PipelineRunUpdated>> {
    return this.follow<PipelineRunUpdated>("pipeline.run.updated", pipelineId, async () => {
      authorize(caller, ["pipelines:read"]);
      const [pipeline] = await this.pipelines.pipelines.byIds(caller, [pipelineId]);
      if (!pipeline) throw notFound("Pipeline");
    });
  }

  /** A delivery's state and attempts, for the account that owns it (or an admin). */
  async deliveryUpdated(caller: Caller, deliveryId: string): Promise<AsyncIterableIterator<DeliveryUpdated>> {
    return this.follow<DeliveryUpdated>("delivery.updated", deliveryId, async () => {
      const who = authorize(caller, ["account:read"]);
      const owner = who.role === "ADMIN" ? {} : { accountId: who.accountId };
      const delivery = await this.prisma.delivery.findFirst({
        where: { id: deliveryId, ...owner },
        select: { id: true },
      });
      if (!delivery) throw notFound("Delivery");
    });
  }

  /**
   * Calls `listener` for every access.revoked event published by any process, until the returned
   * function is called: API processes close lapsed connections at once instead of at the next
   * re-check.
   */
  onAccessRevoked(listener: (event: AccessRevoked) => void): () => Promise<void> {
    const channel = liveChannel(this.options.prefix, "access.revoked", ACCESS_CHANNEL);
    return this.channels.listen(channel, (message) => {
      try {
        listener(JSON.parse(message) as AccessRevoked);
      } catch {
        // Not ours to fail on: the periodic re-check still runs.
      }
    });
  }

  private async follow<E extends LiveEvent>(
    type: E["type"],
    objectId: string,
    check: Check,
  ): Promise<AsyncIterableIterator<E>> {
    await check();
    const channel = liveChannel(this.options.prefix, type, objectId);
    const events = this.pubSub.subscribe(channel);
    // The Repeater starts listening (and the event target sends SUBSCRIBE) on its first pull.
    // Awaiting a SUBSCRIBE of our own, queued behind it on the same connection, returns once
    // Redis has confirmed: from then on no event on the channel is missed.
    const first = events.next();
    try {
      await this.channels.confirm(channel);
    } catch (cause) {
      await events.return();
      throw new AppError(
        "SERVICE_UNAVAILABLE",
        "Live events are unavailable right now",
        { retryAfterSeconds: 5 },
        { cause },
      );
    }
    this.#active++;
    let pending: Promise<IteratorResult<LiveEvent>> | null = first;
    let checkedAt = this.#now();
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      this.#active--;
      await events.return();
    };
    const stream: AsyncIterableIterator<E> = {
      [Symbol.asyncIterator]: () => stream,
      next: async () => {
        const result = await (pending ?? events.next());
        pending = null;
        if (result.done) {
          await close();
          return { done: true, value: undefined };
        }
        if (this.#now() - checkedAt >= this.options.recheckMs) {
          try {
            await check();
          } catch (error) {
            await close();
            throw error;
          }
          checkedAt = this.#now();
        }
        return { done: false, value: result.value as E };
      },
      return: async () => {
        await close();
        return { done: true, value: undefined };
      },
      throw: async (error: unknown) => {
        await close();
        throw error;
      },
    };
    return stream;
  }
}
