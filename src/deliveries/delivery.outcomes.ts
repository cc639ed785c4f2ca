// What follows a try of any delivery (a webhook send, a file drop): the failure count, disabling
// an endpoint that keeps failing, and telling the account (delivery.updated, delivery.failed).
import { newEvent, type EventBus } from "../events/events.js";
import type { Delivery, PrismaClient } from "../generated/prisma/client.js";
import type { Logger } from "../observability/logger.js";

export class DeliveryOutcomes {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly events: EventBus,
    private readonly log: Pick<Logger, "warn">,
    /** Failed tries in a row after which the delivery is disabled. */
    private readonly disableAfter: number,
  ) {}

  async succeeded(delivery: Delivery, attemptId: string): Promise<void> {
    if (delivery.consecutiveFailures > 0) {
      await this.prisma.delivery.update({ where: { id: delivery.id }, data: { consecutiveFailures: 0 } });
    }
    await this.updated(delivery, "ACTIVE", attemptId);
  }

  /**
   * A failed try: counted, and when it was the last (`dead`) the account is told. A delivery that
   * reaches `disableAfter` failures in a row is disabled.
   */
  async failed(
    delivery: Delivery,
    attempt: { id: string; eventId: string; dead: boolean; reason: string },
  ): Promise<void> {
    const after = await this.prisma.delivery.update({
      where: { id: delivery.id },
      data: { consecutiveFailures: { increment: 1 } },
      select: { consecutiveFailures: true },
    });
    if (attempt.dead) await this.gaveUp(delivery, attempt.eventId, attempt.reason, false);
    const disabled =
      after.consecutiveFailures >= this.disableAfter &&
      (await this.disable(delivery, after.consecutiveFailures));
    await this.updated(delivery, disabled ? "DISABLED" : "ACTIVE", attempt.id);
  }

  private async disable(delivery: Delivery, failures: number): Promise<boolean> {
    const { count } = await this.prisma.delivery.updateMany({
      where: { id: delivery.id, status: "ACTIVE" },
      data: { status: "DISABLED" },
    });
    if (count === 0) return false;
    this.log.warn(
      { deliveryId: delivery.id, accountId: delivery.accountId, consecutiveFailures: failures },
      "delivery disabled after failing too many times in a row",
    );
    await this.gaveUp(delivery, null, `disabled after ${failures} failed tries in a row`, true);
    return true;
  }

  async gaveUp(delivery: Delivery, eventId: string | null, reason: string, disabled: boolean) {
    await this.events.publish(
      newEvent("delivery.failed", {
        deliveryId: delivery.id,
        accountId: delivery.accountId,
        eventId: eventId ?? "",
        reason,
        disabled,
      }),
    );
  }

  async updated(delivery: Delivery, status: string, attemptId: string | null) {
    await this.events.publish(
      newEvent("delivery.updated", {
        deliveryId: delivery.id,
        accountId: delivery.accountId,
        status,
        attemptId,
      }),
    );
  }
}
