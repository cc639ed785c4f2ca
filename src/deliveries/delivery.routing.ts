// Who hears about what: the deliveries an event goes to (file drops: ACTIVE ones). Webhooks: buyers hear of datasets
// they may still read, publishers of their own runs, every account of its own credits and
// delivery failures. File drops set to ON_UPDATE: a drop each time their dataset is updated, for
// accounts that may still read it.
import { decideAccess, grants, needsEntitlement, type Reader } from "../credits/access.js";
import { isActiveEntitlement } from "../credits/ledger.js";
import type { DatasetUpdated, DomainEvent } from "../events/events.js";
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

  /**
   * Where each of many events goes: webhooks and file drops, by event id. The dataset updates of
   * the batch (nearly all events when data flows) share one query for their deliveries and one
   * entitlement check; other events are routed one by one.
   */
  async routeMany(events: readonly DomainEvent[]): Promise<Map<string, Routes>> {
    const routes = new Map<string, Routes>();
    const updates = events.filter((e): e is DatasetUpdated => e.type === "dataset.updated");
    const datasetIds = [...new Set(updates.map((e) => e.data.datasetId))];
    const deliveries = datasetIds.length
      ? await this.prisma.delivery.findMany({
          // Webhooks whatever their state (a paused or disabled one holds its events until it is
          // resumed); file drops only while ACTIVE.
          where: {
            datasetId: { in: datasetIds },
            OR: [{ kind: "WEBHOOK" }, { kind: { in: ["SFTP", "S3"] }, status: "ACTIVE" }],
          },
          select: { id: true, accountId: true, datasetId: true, kind: true, trigger: true, eventTypes: true },
        })
      : [];
    const allowed = new Set(await this.entitledMany(deliveries));
    for (const event of updates) {
      const mine = deliveries.filter((d) => d.datasetId === event.data.datasetId && allowed.has(d.id));
      routes.set(event.id, {
        hooks: mine
          .filter(
            (d) => d.kind === "WEBHOOK" && (d.eventTypes.length === 0 || d.eventTypes.includes(event.type)),
          )
          .map((d) => d.id),
        drops: mine.filter((d) => d.kind !== "WEBHOOK" && d.trigger === "ON_UPDATE").map((d) => d.id),
      });
    }
    for (const event of events) {
      if (event.type !== "dataset.updated")
        routes.set(event.id, { hooks: await this.targets(event), drops: [] });
    }
    return routes;
  }

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
      case "purchase.renewal_failed":
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
    return this.entitledMany(deliveries.map((d) => ({ ...d, datasetId })));
  }

  /** `entitled` for deliveries of many datasets: one query for the datasets, one for purchases. */
  private async entitledMany(
    deliveries: { id: string; accountId: string; datasetId: string | null }[],
  ): Promise<string[]> {
    if (deliveries.length === 0) return [];
    const datasetIds = [...new Set(deliveries.flatMap((d) => (d.datasetId ? [d.datasetId] : [])))];
    const datasets = new Map(
      (
        await this.prisma.dataset.findMany({
          where: { id: { in: datasetIds } },
          select: { id: true, accountId: true, status: true, access: true, pricePer100Records: true },
        })
      ).map((d) => [d.id, d]),
    );
    // Deliveries read as their account's buyer, never as an admin (access.ts).
    const readerOf = (d: { accountId: string }): Reader => ({ accountId: d.accountId, admin: false });
    const buyers = deliveries.filter((d) => {
      const dataset = d.datasetId ? datasets.get(d.datasetId) : undefined;
      return dataset !== undefined && needsEntitlement(readerOf(d), dataset);
    });
    const purchases = buyers.length
      ? await this.prisma.purchase.findMany({
          where: {
            datasetId: { in: [...new Set(buyers.map((d) => d.datasetId!))] },
            accountId: { in: [...new Set(buyers.map((d) => d.accountId))] },
          },
          select: { accountId: true, datasetId: true, status: true, expiresAt: true },
        })
      : [];
    const now = this.now();
    const paid = new Set(
      purchases.filter((p) => isActiveEntitlement(p, now)).map((p) => `${p.datasetId} ${p.accountId}`),
    );
    return deliveries
      .filter((d) => {
        const dataset = d.datasetId ? datasets.get(d.datasetId) : undefined;
        if (!dataset) return false;
        return grants(decideAccess(readerOf(d), dataset, paid.has(`${d.datasetId} ${d.accountId}`)));
      })
      .map((d) => d.id);
  }
}

/** The deliveries one event goes to. */
export interface Routes {
  hooks: string[];
  drops: string[];
}
