// Deliveries: how an account has data pushed to it (signed webhooks, SFTP and S3 file drops).
// The rules: only for datasets the account may read, settings checked in full, credentials and
// signing secrets encrypted at rest and the signing secret shown once (at creation and rotation).
import { decideAccess, deniedError, needsEntitlement, type Reader } from "../credits/access.js";
import { ModelReader } from "../db/model-reader.js";
import { uuidv7 } from "../db/uuid.js";
import { badInput, conflict, notFound } from "../errors.js";
import type { Ledger } from "../credits/ledger.js";
import type {
  Dataset,
  Delivery,
  DeliveryAttempt,
  DeliveryFormat,
  DeliveryKind,
  DeliveryMode,
  DeliveryTrigger,
  Prisma,
  PrismaClient,
} from "../generated/prisma/client.js";
import { newEvent, type EventBus } from "../events/events.js";
import { authorize } from "../identity/authorization.js";
import type { AuthenticatedCaller, Caller } from "../identity/caller.js";
import { readScope } from "../identity/read-scope.js";
import { OutboundRefused, checkTarget, type OutboundPolicy } from "../net/outbound.js";
import type { PageLimits } from "../pagination.js";
import { validateSettings, type DeliverySettings } from "./delivery.config.js";
import type { DeliverySecrets, StoredSecrets } from "./delivery.secrets.js";
import { guardDropTarget, guardedField, type DropDispatcher } from "./drop.dispatcher.js";
import { parseDropTarget } from "./drops/index.js";
import type { WebhookDispatcher } from "./webhook.dispatcher.js";
import { triggerEnvelope } from "./webhook.envelope.js";
import { newSigningSecret } from "./webhook.signing.js";

export interface DeliveryInput {
  datasetId: string;
  kind: DeliveryKind;
  config: Record<string, unknown>;
  secrets?: Record<string, unknown> | null;
  format?: DeliveryFormat | null;
  gzip?: boolean | null;
  trigger?: DeliveryTrigger | null;
  schedule?: string | null;
  mode?: DeliveryMode | null;
  eventTypes?: string[] | null;
}

/** Undefined (or null where noted) keeps a field; the dataset and the kind cannot change. */
export interface DeliveryUpdate {
  config?: Record<string, unknown> | null;
  /** Replaces the user's secrets; null removes them (the signing secret stays). */
  secrets?: Record<string, unknown> | null;
  format?: DeliveryFormat | null;
  gzip?: boolean | null;
  trigger?: DeliveryTrigger | null;
  /** null removes the schedule. */
  schedule?: string | null;
  mode?: DeliveryMode | null;
  eventTypes?: string[] | null;
}

/** A delivery with the signing secret just made: the only time it is shown. */
export interface DeliveryWithSecret {
  delivery: Delivery;
  signingSecret: string | null;
}

export interface DeliveryDispatch {
  delivery: Delivery;
  eventId: string;
}

const READ = ["account:read"];
const WRITE = ["account:write"];
export const MAX_GRACE_SECONDS = 30 * 86_400;

export class DeliveryService {
  readonly deliveries: ModelReader<Delivery>;
  readonly attempts: ModelReader<DeliveryAttempt>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly secrets: DeliverySecrets,
    private readonly ledger: Ledger,
    private readonly webhooks: WebhookDispatcher,
    private readonly drops: DropDispatcher,
    private readonly events: EventBus,
    private readonly policy: OutboundPolicy,
    limits: PageLimits,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.deliveries = new ModelReader(prisma.delivery, "delivery", limits);
    this.attempts = new ModelReader(prisma.deliveryAttempt, "deliveryAttempt", limits);
  }

  async create(caller: Caller, input: DeliveryInput): Promise<DeliveryWithSecret> {
    const who = authorize(caller, WRITE);
    const { owner } = await this.readableDataset(who, input.datasetId);
    const settings = validateSettings(
      {
        kind: input.kind,
        config: input.config,
        secrets: input.secrets ?? null,
        format: input.format ?? null,
        gzip: input.gzip ?? false,
        trigger:
          input.trigger ??
          (input.kind === "WEBHOOK" ? "ON_UPDATE" : input.schedule ? "SCHEDULE" : "ON_UPDATE"),
        schedule: input.schedule ?? null,
        mode: input.mode ?? (input.kind === "WEBHOOK" ? "SNAPSHOT" : "INCREMENTAL"),
        eventTypes: input.eventTypes ?? [],
      },
      owner,
    );
    await this.checkReachable(settings);
    const signingSecret = settings.kind === "WEBHOOK" ? newSigningSecret() : null;
    const delivery = await this.prisma.delivery.create({
      data: {
        accountId: who.accountId,
        datasetId: input.datasetId,
        ...this.stored(settings, signingSecret),
      },
    });
    try {
      await this.drops.syncSchedule(delivery);
    } catch (error) {
      // A delivery whose schedule could not be kept would never run: it is not kept either.
      await this.prisma.delivery.delete({ where: { id: delivery.id } });
      throw error;
    }
    return { delivery, signingSecret };
  }

  async update(caller: Caller, id: string, input: DeliveryUpdate): Promise<Delivery> {
    const delivery = await this.own(caller, id);
    const who = authorize(caller, WRITE);
    const { owner } = await this.readableDataset(who, delivery.datasetId, delivery);
    const current = this.secrets.open(delivery);
    const { signingSecret, ...userSecrets } = current;
    const settings = validateSettings(
      {
        kind: delivery.kind,
        config: input.config ?? (delivery.config as Record<string, unknown>),
        secrets: input.secrets === undefined ? userSecrets : input.secrets,
        format: input.format === undefined ? delivery.format : input.format,
        gzip: input.gzip ?? delivery.gzip,
        trigger: input.trigger ?? delivery.trigger,
        schedule: input.schedule === undefined ? delivery.schedule : input.schedule,
        mode: input.mode ?? delivery.mode,
        eventTypes: input.eventTypes ?? delivery.eventTypes,
      },
      owner,
    );
    await this.checkReachable(settings);
    const updated = await this.prisma.delivery.update({
      where: { id: delivery.id },
      data: this.stored(settings, signingSecret ?? null),
    });
    await this.drops.syncSchedule(updated);
    return updated;
  }

  async delete(caller: Caller, id: string): Promise<Delivery> {
    const delivery = await this.own(caller, id);
    await this.prisma.delivery.delete({ where: { id: delivery.id } });
    await this.drops.syncSchedule(delivery, true);
    return delivery;
  }

  async pause(caller: Caller, id: string): Promise<Delivery> {
    const delivery = await this.own(caller, id);
    if (delivery.status === "PAUSED") return delivery;
    const paused = await this.setStatus(delivery, "PAUSED");
    await this.drops.syncSchedule(paused);
    return paused;
  }

  /**
   * Re-enables a PAUSED or DISABLED delivery and sends again the events it still owes (a file drop:
   * the drop whose retries it missed, and its schedule again).
   */
  async resume(caller: Caller, id: string): Promise<Delivery> {
    const delivery = await this.own(caller, id);
    const resumed =
      delivery.status === "ACTIVE" && delivery.consecutiveFailures === 0
        ? delivery
        : await this.setStatus(delivery, "ACTIVE", { consecutiveFailures: 0 });
    if (delivery.kind === "WEBHOOK" && delivery.status !== "ACTIVE")
      await this.webhooks.resumePending(delivery.id);
    if (delivery.kind !== "WEBHOOK") {
      await this.drops.syncSchedule(resumed);
      if (delivery.status !== "ACTIVE") await this.drops.resumePending(delivery.id);
    }
    return resumed;
  }

  /**
   * Webhooks: sends a `dataset.updated` event about the dataset as it is now, to this delivery
   * only. File drops: queues a drop now; `eventId` is the drop's id (its attempts carry it).
   */
  async trigger(caller: Caller, id: string): Promise<DeliveryDispatch> {
    const delivery = await this.own(caller, id);
    if (delivery.status !== "ACTIVE")
      throw conflict("The delivery is not active; resume it first", { status: delivery.status });
    if (delivery.kind !== "WEBHOOK") {
      const dropId = await this.drops.enqueue(delivery.id);
      if (dropId === null) {
        throw conflict("A drop of this delivery is already waiting; it will include the current data");
      }
      return { delivery, eventId: dropId };
    }
    const dataset = await this.prisma.dataset.findUniqueOrThrow({ where: { id: delivery.datasetId } });
    const eventId = uuidv7(this.now().getTime());
    const body = JSON.stringify(triggerEnvelope(dataset, this.now()));
    await this.webhooks.enqueue(delivery.id, eventId, "dataset.updated", body);
    return { delivery, eventId };
  }

  /**
   * A new signing secret, returned once. The old one keeps signing next to it for `graceSeconds`
   * (each send then carries both signatures), so receivers can switch without losing a message.
   */
  async rotateSecret(caller: Caller, id: string, graceSeconds: number): Promise<DeliveryWithSecret> {
    if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS) {
      throw badInput(`graceSeconds must be 0-${MAX_GRACE_SECONDS}`, { argument: "graceSeconds" });
    }
    const delivery = await this.own(caller, id);
    if (delivery.kind !== "WEBHOOK")
      throw badInput("Only webhooks have a signing secret", { argument: "id" });
    const current = this.secrets.open(delivery);
    const signingSecret = newSigningSecret();
    const updated = await this.prisma.delivery.update({
      where: { id: delivery.id },
      data: {
        secretsEncrypted: this.secrets.seal({ ...current, signingSecret }),
        previousSecretEncrypted:
          graceSeconds > 0 && current.signingSecret
            ? this.secrets.sealSigningSecret(current.signingSecret)
            : null,
        previousSecretExpiresAt:
          graceSeconds > 0 ? new Date(this.now().getTime() + graceSeconds * 1000) : null,
      },
    });
    return { delivery: updated, signingSecret };
  }

  /** Sends the attempt's event again (same webhook-id, same body) as a new attempt. */
  async redeliver(caller: Caller, attemptId: string): Promise<DeliveryDispatch> {
    authorize(caller, WRITE);
    const attempt = await this.prisma.deliveryAttempt.findFirst({
      where: { AND: [{ id: attemptId }, readScope(caller, "deliveryAttempt")] },
    });
    if (!attempt) throw notFound("Delivery attempt");
    const delivery = await this.own(caller, attempt.deliveryId);
    if (delivery.status !== "ACTIVE")
      throw conflict("The delivery is not active; resume it first", { status: delivery.status });
    await this.webhooks.redeliver(delivery.id, attempt.eventId);
    return { delivery, eventId: attempt.eventId };
  }

  /** The delivery if the caller's account owns it (admins: any); NOT_FOUND otherwise. */
  private async own(caller: Caller, id: string): Promise<Delivery> {
    const who = authorize(caller, WRITE);
    const delivery = await this.prisma.delivery.findUnique({ where: { id } });
    if (!delivery || (who.role !== "ADMIN" && delivery.accountId !== who.accountId))
      throw notFound("Delivery");
    return delivery;
  }

  /**
   * The dataset, if the account may read it as ReadService does: its own datasets, and published
   * ones that are OPEN, METERED, or PURCHASED with an active purchase.
   */
  private async readableDataset(
    who: AuthenticatedCaller,
    datasetId: string,
    delivery?: Delivery,
  ): Promise<{ dataset: Dataset; owner: boolean }> {
    authorize(who, READ);
    const dataset = await this.prisma.dataset.findFirst({
      where: { AND: [{ id: datasetId }, readScope(who, "dataset")] },
    });
    if (!dataset) throw notFound("Dataset");
    // A delivery reads as its account; an admin setting one up for themselves reads as an admin.
    const reader: Reader = {
      accountId: delivery?.accountId ?? who.accountId,
      admin: who.role === "ADMIN" && !delivery,
    };
    const entitled =
      needsEntitlement(reader, dataset) && (await this.ledger.isEntitled(reader.accountId, dataset.id));
    const decision = decideAccess(reader, dataset, entitled);
    if (decision.kind === "denied") throw deniedError(decision);
    return { dataset, owner: dataset.accountId === reader.accountId };
  }

  private async checkReachable(settings: DeliverySettings): Promise<void> {
    const field = settings.kind === "WEBHOOK" ? "config.url" : guardedField(settings.kind);
    try {
      if (settings.kind === "WEBHOOK") await checkTarget(String(settings.config.url), this.policy);
      else
        await guardDropTarget(parseDropTarget(settings.kind, settings.config, settings.secrets), this.policy);
    } catch (error) {
      if (error instanceof OutboundRefused) {
        throw badInput(`Invalid delivery: ${field}: ${error.message}`, {
          problems: [`${field}: ${error.message}`],
        });
      }
      throw error;
    }
  }

  private stored(settings: DeliverySettings, signingSecret: string | null) {
    const secrets: StoredSecrets = { ...settings.secrets, ...(signingSecret ? { signingSecret } : {}) };
    return {
      kind: settings.kind,
      config: settings.config as Prisma.InputJsonObject,
      secretsEncrypted: this.secrets.seal(secrets),
      format: settings.format,
      gzip: settings.gzip,
      trigger: settings.trigger,
      schedule: settings.schedule,
      mode: settings.mode,
      eventTypes: settings.eventTypes,
    };
  }

  private async setStatus(
    delivery: Delivery,
    status: Delivery["status"],
    extra: Prisma.DeliveryUpdateInput = {},
  ): Promise<Delivery> {
    const updated = await this.prisma.delivery.update({
      where: { id: delivery.id },
      data: { status, ...extra },
    });
    await this.events.publish(
      newEvent("delivery.updated", {
        deliveryId: updated.id,
        accountId: updated.accountId,
        status: updated.status,
        attemptId: null,
      }),
    );
    return updated;
  }
}
