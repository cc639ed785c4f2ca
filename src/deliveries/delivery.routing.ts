// Who hears about what: the deliveries an event goes to (file drops: ACTIVE ones). Webhooks: buyers hear of datasets
// they may still read, publishers of their own runs, every account of its own credits and
// delivery failures. File drops set to ON_UPDATE: a drop each time their dataset is updated, for
// accounts that may still read it.
import { isActiveEntitlement } from "../credits/ledger.js";
import type { DomainEvent } from "../events/events.js";
import type { Prisma, PrismaClient } from "../generated/prisma/client.js";

// Paused and disabled webhooks get their events too: held until resumed, never dropped
// (WebhookDispatcher.resumePending).
const WEBHOOK = { kind: "WEBHOOK" } as const;
const wants = (type: string): Prisma.DeliveryWhereInput => ({
  OR: [{ eventTypes: { isEmpty: true } }, { eventTypes: { has: type } }],
});

export class DeliveryRouting {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** The ids of the ON_UPDATE file-drop deliveries an event starts a drop for. */
  async drops(event: DomainEvent): Promise<string[]> {
    if (event.type !== "dataset.updated") return [];
    const { datasetId } = event.data;
    const deliveries = await this.prisma.delivery.findMany({
      where: { datasetId, kind: { in: ["SFTP", "S3"] }, status: "ACTIVE", trigger: "ON_UPDATE" },
      select: { id: true, accountId: true },
    });
    return this.entitled(datasetId, deliveries);
  }

  /** The ids of the webhook deliveries an event goes to. */
  async targets(event: DomainEvent): Promise<string[]> {
    const find = async (where: Prisma.DeliveryWhereInput) =>
      this.prisma.delivery.findMany({
        where: { AND: [WEBHOOK, wants(event.type), where] },
        select: { id: true, accountId: true },
      });
    switch (event.type) {
      case "dataset.updated": {
        const { datasetId } = event.data;
        return this.entitled(datasetId, await find({ datasetId }));
      }
      case "pipeline.run.succeeded":
      case "pipeline.run.failed":
        return (await find({ datasetId: event.data.datasetId, accountId: event.data.accountId })).map(
          (d) => d.id,
        );
      case "credits.low":
        return (await find({ accountId: event.data.accountId })).map((d) => d.id);
      case "delivery.failed": {
        const { deliveryId, eventId, accountId } = event.data;
        // A failure to tell about a failure is not told again: two broken endpoints of one
        // account would otherwise keep each other busy.
        const cause = eventId
          ? await this.prisma.deliveryEvent.findUnique({
              where: { deliveryId_eventId: { deliveryId, eventId } },
              select: { eventType: true },
            })
          : null;
        if (cause?.eventType === "delivery.failed") return [];
        return (await find({ accountId, id: { not: deliveryId } })).map((d) => d.id);
      }
      default:
        return [];
    }
  }

  /** The deliveries whose accounts may still read the dataset (a purchase can expire). */
  async entitled(datasetId: string, deliveries: { id: string; accountId: string }[]): Promise<string[]> {
    if (deliveries.length === 0) return [];
    const dataset = await this.prisma.dataset.findUnique({
      where: { id: datasetId },
      select: { accountId: true, status: true, access: true },
    });
    if (!dataset) return [];
    const buyers = deliveries.filter((d) => d.accountId !== dataset.accountId);
    const purchases =
      dataset.access === "PURCHASED" && buyers.length
        ? await this.prisma.purchase.findMany({
            where: { datasetId, accountId: { in: buyers.map((d) => d.accountId) } },
            select: { accountId: true, status: true, expiresAt: true },
          })
        : [];
    const now = this.now();
    const paid = new Set(purchases.filter((p) => isActiveEntitlement(p, now)).map((p) => p.accountId));
    return deliveries
      .filter(
        (d) =>
          d.accountId === dataset.accountId ||
          (dataset.status === "PUBLISHED" && (dataset.access !== "PURCHASED" || paid.has(d.accountId))),
      )
      .map((d) => d.id);
  }
}
