// API keys of the caller's account: listed by prefix, created and rotated with the secret shown
// once, revoked at once. Every write checks the key belongs to the caller's account.
import type { Config } from "../config.js";
import type { Encryption } from "../db/encryption.js";
import { ModelReader } from "../db/model-reader.js";
import { AppError } from "../errors.js";
import { newEvent, type AccessRevoked, type EventBus } from "../events/events.js";
import type { ApiKey, PrismaClient } from "../generated/prisma/client.js";
import type { PageLimits } from "../pagination.js";
import { spendPeriods, spent } from "../credits/spend-limits.js";
import { authorize } from "./authorization.js";
import { readScope } from "./read-scope.js";
import { ROLE_SCOPES, isScope, type Caller, type Scope } from "./caller.js";
import { generateSigningSecret } from "./request-signing.js";
import { generateApiKey } from "./secrets.js";

export interface NewKey {
  apiKey: ApiKey;
  secret: string;
  /** Only for keys that require signed requests; shown once like the key. */
  signingSecret: string | null;
}

export interface ApiKeyLimits {
  dailySpendLimit?: number | null;
  monthlySpendLimit?: number | null;
  /** Raw dataset ids. */
  datasetIds?: readonly string[] | null;
}

export interface CreateApiKeyInput extends ApiKeyLimits {
  name: string;
  scopes?: readonly string[] | null;
  expiresAt?: Date | null;
  requireSignature?: boolean | null;
}

export class ApiKeyService {
  readonly keys: ModelReader<ApiKey>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly config: Pick<Config, "API_KEY_ROTATION_GRACE_SECONDS">,
    private readonly encryption: Encryption,
    limits: PageLimits,
    private readonly events?: Pick<EventBus, "publish">,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.keys = new ModelReader(prisma.apiKey, "apiKey", limits);
  }

  async create(caller: Caller, input: CreateApiKeyInput): Promise<NewKey> {
    const who = authorize(caller, ["account:write"]);
    const name = input.name.trim();
    if (name.length < 1 || name.length > 100) {
      throw new AppError("BAD_USER_INPUT", "Name must be 1 to 100 characters", { argument: "name" });
    }
    const scopes = this.grantableScopes(who.role, input.scopes);
    if (input.expiresAt && input.expiresAt <= this.now()) {
      throw new AppError("BAD_USER_INPUT", "expiresAt must be in the future", { argument: "expiresAt" });
    }
    const limits = await this.checkLimits(caller, input);
    const key = generateApiKey();
    const signingSecret = input.requireSignature ? generateSigningSecret() : null;
    const apiKey = await this.prisma.apiKey.create({
      data: {
        accountId: who.accountId,
        userId: who.userId,
        name,
        prefix: key.prefix,
        secretHash: key.secretHash,
        scopes,
        expiresAt: input.expiresAt ?? null,
        requireSignature: signingSecret !== null,
        signingSecretEncrypted: signingSecret && this.encryption.encrypt(signingSecret),
        ...limits,
      },
    });
    return { apiKey, secret: key.key, signingSecret };
  }

  /** Replaces the key's spend limits and dataset list; they apply from its next request. */
  async setLimits(caller: Caller, id: string, input: ApiKeyLimits): Promise<ApiKey> {
    const key = await this.ownKey(caller, id);
    const limits = await this.checkLimits(caller, input);
    return this.prisma.apiKey.update({ where: { id: key.id }, data: limits });
  }

  /** Credits the key spent today and this month (UTC), holds of reads in flight included. */
  async spend(id: string): Promise<{ today: bigint; thisMonth: bigint }> {
    const periods = spendPeriods(this.now());
    const [today, thisMonth] = await Promise.all([
      spent(this.prisma, id, "DAY", periods.DAY),
      spent(this.prisma, id, "MONTH", periods.MONTH),
    ]);
    return { today, thisMonth };
  }

  async revoke(caller: Caller, id: string): Promise<ApiKey> {
    const key = await this.ownKey(caller, id);
    if (key.revokedAt) return key;
    const revoked = await this.prisma.apiKey.update({
      where: { id: key.id },
      data: { revokedAt: this.now() },
    });
    // Live subscriptions opened with the key close at once, not at their next re-check.
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", {
        accountId: key.accountId,
        apiKeyId: key.id,
        reason: "KEY_REVOKED",
      }),
    );
    return revoked;
  }

  /**
   * A new key with the same name, scopes and expiry. The old secret keeps working for the grace
   * period (or `graceSeconds`, 0 to stop it at once), so clients can be redeployed without downtime.
   */
  async rotate(caller: Caller, id: string, graceSeconds?: number | null): Promise<NewKey> {
    const old = await this.ownKey(caller, id);
    if (old.revokedAt || old.rotatedToId || (old.graceUntil && old.graceUntil <= this.now())) {
      throw new AppError("CONFLICT", "Only an active key that was not rotated yet can be rotated");
    }
    const grace = graceSeconds ?? this.config.API_KEY_ROTATION_GRACE_SECONDS;
    if (grace < 0 || grace > 30 * 86_400) {
      throw new AppError("BAD_USER_INPUT", "graceSeconds must be between 0 and 2592000", {
        argument: "graceSeconds",
      });
    }
    const key = generateApiKey();
    const signingSecret = old.requireSignature ? generateSigningSecret() : null;
    const graceUntil = new Date(this.now().getTime() + grace * 1000);
    const [, apiKey] = await this.prisma.$transaction([
      this.prisma.apiKey.update({ where: { id: old.id }, data: { graceUntil } }),
      this.prisma.apiKey.create({
        data: {
          accountId: old.accountId,
          userId: old.userId,
          name: old.name,
          prefix: key.prefix,
          secretHash: key.secretHash,
          scopes: old.scopes,
          expiresAt: old.expiresAt,
          requireSignature: old.requireSignature,
          signingSecretEncrypted: signingSecret && this.encryption.encrypt(signingSecret),
          rotatedFromId: old.id,
          dailySpendLimit: old.dailySpendLimit,
          monthlySpendLimit: old.monthlySpendLimit,
          datasetIds: old.datasetIds,
        },
      }),
    ]);
    // Processes that remember the old key forget it: from now on it ends at its grace.
    await this.events?.publish(
      newEvent<AccessRevoked>("access.revoked", {
        accountId: old.accountId,
        apiKeyId: old.id,
        reason: "KEY_ROTATED",
      }),
    );
    return { apiKey, secret: key.key, signingSecret };
  }

  /** The key if it belongs to the caller's account (any account for admins); NOT_FOUND otherwise. */
  private async ownKey(caller: Caller, id: string): Promise<ApiKey & { rotatedToId: string | null }> {
    authorize(caller, ["account:write"]);
    const [key] = await this.keys.byIds(caller, [id]);
    if (!key) throw new AppError("NOT_FOUND", "API key not found");
    const rotatedTo = await this.prisma.apiKey.findUnique({
      where: { rotatedFromId: key.id },
      select: { id: true },
    });
    return { ...key, rotatedToId: rotatedTo?.id ?? null };
  }

  private async checkLimits(caller: Caller, input: ApiKeyLimits) {
    const limit = (value: number | null | undefined, argument: string): bigint | null => {
      if (value == null) return null;
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new AppError("BAD_USER_INPUT", `${argument} must be a whole number of credits >= 1`, {
          argument,
        });
      }
      return BigInt(value);
    };
    const datasetIds = [...new Set(input.datasetIds ?? [])];
    if (datasetIds.length > 100) {
      throw new AppError("BAD_USER_INPUT", "A key may be limited to at most 100 datasets", {
        argument: "datasetIds",
      });
    }
    if (datasetIds.length > 0) {
      const visible = await this.prisma.dataset.count({
        where: { AND: [{ id: { in: datasetIds } }, readScope(caller, "dataset")] },
      });
      if (visible !== datasetIds.length) throw new AppError("NOT_FOUND", "Dataset not found");
    }
    return {
      dailySpendLimit: limit(input.dailySpendLimit, "dailySpendLimit"),
      monthlySpendLimit: limit(input.monthlySpendLimit, "monthlySpendLimit"),
      datasetIds,
    };
  }

  private grantableScopes(role: keyof typeof ROLE_SCOPES, requested?: readonly string[] | null): Scope[] {
    const allowed = ROLE_SCOPES[role];
    if (requested == null) return [...allowed];
    const unknown = requested.filter((s) => !isScope(s));
    if (unknown.length) {
      throw new AppError("BAD_USER_INPUT", `Unknown scopes: ${unknown.join(", ")}`, { argument: "scopes" });
    }
    const beyond = requested.filter((s) => !allowed.includes(s as Scope));
    if (beyond.length) {
      throw new AppError("FORBIDDEN", `Your role cannot grant: ${beyond.join(", ")}`, {
        requiredScopes: beyond,
      });
    }
    if (requested.length === 0) throw new AppError("BAD_USER_INPUT", "A key needs at least one scope");
    return [...new Set(requested)] as Scope[];
  }
}
