// Events to deliveries: the one EventSink of this domain. Routing says which deliveries an event
// goes to; each webhook gets the event stored and sent, each ON_UPDATE file drop gets a drop
// queued. Both persist (PostgreSQL, pg-boss) before handle() resolves.
//
// Events handed in while a batch is being stored wait and go together in the next one (group
// commit): one routing pass and one transaction for many events, so the rate follows the load
// instead of one transaction per event, and an event alone goes at once.
import type { DomainEvent, EventSink } from "../events/events.js";
import type { DeliveryRouting } from "./delivery.routing.js";
import type { DropDispatcher } from "./drop.dispatcher.js";
import type { WebhookDispatcher, WebhookEvent } from "./webhook.dispatcher.js";
import { envelopeOf, isWebhookEventType } from "./webhook.envelope.js";

/** Events stored together at most. */
const MAX_BATCH = 500;

interface Waiting {
  event: DomainEvent;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class DeliverySink implements EventSink {
  readonly name = "deliveries";
  #waiting: Waiting[] = [];
  #draining = false;

  constructor(
    private readonly routing: DeliveryRouting,
    private readonly webhooks: WebhookDispatcher,
    private readonly drops: DropDispatcher,
  ) {}

  handle(event: DomainEvent): Promise<void> {
    // Events no delivery takes (a delivery's own updates, run progress) do not wait behind a batch
    // being stored: a worker tells of every batch it sent, and would wait on the producers' queue.
    // File drops follow dataset.updated, which webhooks take too.
    if (!isWebhookEventType(event.type)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.#waiting.push({ event, resolve, reject });
      if (!this.#draining) {
        this.#draining = true;
        void this.#drain();
      }
    });
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length) {
      const batch = this.#waiting.splice(0, MAX_BATCH);
      try {
        await this.#deliver(batch.map((w) => w.event));
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      }
    }
    this.#draining = false;
  }

  async #deliver(events: DomainEvent[]): Promise<void> {
    const routes = await this.routing.routeMany(events);
    const hooks: WebhookEvent[] = [];
    const drops: string[] = [];
    for (const event of events) {
      const route = routes.get(event.id);
      if (!route) continue;
      drops.push(...route.drops);
      const envelope = envelopeOf(event);
      if (!envelope || route.hooks.length === 0) continue;
      const body = JSON.stringify(envelope);
      for (const deliveryId of route.hooks)
        hooks.push({ deliveryId, eventId: event.id, eventType: event.type, body });
    }
    await Promise.all([this.webhooks.enqueueMany(hooks), ...drops.map((id) => this.drops.enqueue(id))]);
  }
}
