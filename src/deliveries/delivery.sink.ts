// Events to deliveries: the one EventSink of this domain. Routing says which deliveries an event
// goes to; each webhook gets the event stored and sent, each ON_UPDATE file drop gets a drop
// queued. Both persist (PostgreSQL, pg-boss) before handle() resolves.
import type { DomainEvent, EventSink } from "../events/events.js";
import type { DeliveryRouting } from "./delivery.routing.js";
import type { DropDispatcher } from "./drop.dispatcher.js";
import type { WebhookDispatcher } from "./webhook.dispatcher.js";
import { envelopeOf } from "./webhook.envelope.js";

export class DeliverySink implements EventSink {
  readonly name = "deliveries";

  constructor(
    private readonly routing: DeliveryRouting,
    private readonly webhooks: WebhookDispatcher,
    private readonly drops: DropDispatcher,
  ) {}

  async handle(event: DomainEvent): Promise<void> {
    const envelope = envelopeOf(event);
    const [hooks, drops] = await Promise.all([
      envelope ? this.routing.targets(event) : [],
      this.routing.drops(event),
    ]);
    const body = JSON.stringify(envelope);
    await Promise.all([
      ...hooks.map((id) => this.webhooks.enqueue(id, event.id, event.type, body)),
      ...drops.map((id) => this.drops.enqueue(id)),
    ]);
  }
}
