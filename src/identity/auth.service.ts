// Turns credentials into a Caller, and creates them: signup, login, the first admin.
import type { Config } from "../config.js";
import type { Encryption } from "../db/encryption.js";
import { translatePrismaError } from "../db/prisma-errors.js";
import { AppError } from "../errors.js";
import type { Account, ApiKey, Plan, PrismaClient, User } from "../generated/prisma/client.js";
import {
  ROLE_SCOPES,
  anonymous,
  isScope,
  type AuthenticatedCaller,
  type Caller,
  type PlanLimits,
  type Role,
} from "./caller.js";
import { IdentityCache, LastUsedBatch } from "./identity-cache.js";
import { verifySignedRequest, type SignedRequest } from "./request-signing.js";
import {
  DUMMY_PASSWORD_HASH,
  generateApiKey,
  hashApiKey,
  hashPassword,
  looksLikeApiKey,
  signToken,
  verifyPassword,
  verifyToken,
} from "./secrets.js";

export interface Credentials {
  apiKey?: string;
  /** The Authorization header: `Bearer <token>`. */
  authorization?: string;
}

export interface SignupInput {
  name: string;
  email: string;
  password?: string | null;
  role?: "BUYER" | "PUBLISHER";
}

export interface Session {
  token: string;
  expiresAt: Date;
  user: User;
}

/** Remembers used request signatures for the replay window (Redis in the app). */
export interface NonceStore {
  /** True when `key` was not claimed before; false when it was (a replay). */
  claim(key: string, ttlSeconds: number): Promise<boolean>;
}

/** What a request with an API key needs once the key is known: who calls, and how to check a signature. */
interface KnownKey {
  caller: Extract<AuthenticatedCaller, { kind: "apiKey" }>;
  signingSecretEncrypted: string | null;
  requireSignature: boolean;
  lastUsedAt: Date | null;
}

export function planLimits(plan: Plan, account: { rateLimitPerMinute: number | null }): PlanLimits {
  return {
    perMinute: account.rateLimitPerMinute ?? plan.requestsPerMinute,
    perHour: plan.hourlyQuota,
    perMonth: plan.monthlyQuota,
  };
}

export function normalizeEmail(email: string): string {
  const normalized = email.trim().toLowerCase();
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(normalized) || normalized.length > 254) {
    throw new AppError("BAD_USER_INPUT", "Invalid email address", { argument: "email" });
  }
  return normalized;
}

export function checkPassword(password: string): void {
  if (password.length < 12 || password.length > 1024) {
    throw new AppError("BAD_USER_INPUT", "Passwords must be 12 to 1024 characters", { argument: "password" });
  }
}

export class AuthService {
  private readonly keys: IdentityCache<KnownKey>;
  private readonly users: IdentityCache<{ caller: AuthenticatedCaller }>;
  private readonly lastUsed: LastUsedBatch;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly config: Pick<
      Config,
      "JWT_SECRET" | "JWT_TTL_SECONDS" | "SIGNATURE_TOLERANCE_SECONDS" | "IDENTITY_CACHE_SECONDS"
    >,
    private readonly encryption: Encryption,
    private readonly nonces: NonceStore,
    private readonly now: () => Date = () => new Date(),
    onError: (err: unknown) => void = () => undefined,
  ) {
    const ttlMs = config.IDENTITY_CACHE_SECONDS * 1000;
    const clock = () => this.now().getTime();
    this.keys = new IdentityCache(ttlMs, 10_000, clock);
    this.users = new IdentityCache(ttlMs, 10_000, clock);
    this.lastUsed = new LastUsedBatch(async (ids, at) => {
      await this.prisma.apiKey.updateMany({ where: { id: { in: ids } }, data: { lastUsedAt: at } });
    }, onError);
  }

  /**
   * Forgets the account's remembered callers: their next request reads them again. Called on
   * every process when access changes (`access.revoked`: a key revoked or rotated, the account
   * suspended, its plan or a user's role changed); "*": every account (a plan's limits changed).
   */
  forgetAccount(accountId: string): void {
    if (accountId === "*") {
      this.keys.clear();
      this.users.clear();
      return;
    }
    this.keys.forgetAccount(accountId);
    this.users.forgetAccount(accountId);
  }

  /** Writes the keys' pending `lastUsedAt` (at shutdown). */
  flushLastUsed(): Promise<void> {
    return this.lastUsed.flush();
  }

  /**
   * The caller behind these credentials; anonymous when there are none. A caller is remembered
   * for IDENTITY_CACHE_SECONDS (never past its key's expiry or rotation grace); revocation,
   * suspension and plan changes apply to the next request through `forgetAccount`. `request` is
   * needed to check the signature of keys that require signed requests (checked every time).
   */
  async authenticate(credentials: Credentials, request?: SignedRequest): Promise<Caller> {
    if (credentials.apiKey !== undefined) return this.byApiKey(credentials.apiKey, request);
    if (credentials.authorization !== undefined) {
      const match = /^Bearer\s+(\S+)$/i.exec(credentials.authorization);
      if (!match) throw new AppError("UNAUTHENTICATED", "Authorization must be `Bearer <token>`");
      return this.byToken(match[1]!);
    }
    return anonymous;
  }

  private async byApiKey(key: string, request?: SignedRequest): Promise<Caller> {
    if (!looksLikeApiKey(key)) throw new AppError("UNAUTHENTICATED", "Invalid API key");
    const digest = hashApiKey(key);
    const known = this.keys.get(digest) ?? (await this.readKey(digest));
    if (known.requireSignature) {
      await this.checkSignature(known.caller.apiKeyId, known.signingSecretEncrypted, request);
    }
    this.lastUsed.mark(known.caller.apiKeyId, this.now(), known.lastUsedAt);
    return known.caller;
  }

  private async readKey(digest: string): Promise<KnownKey> {
    const row = await this.prisma.apiKey.findUnique({
      where: { secretHash: digest },
      include: { account: { include: { plan: true } }, user: true },
    });
    if (!row || !row.user) throw new AppError("UNAUTHENTICATED", "Invalid API key");
    const refusal = keyRefusal(row, this.now());
    if (refusal) throw refusal;
    const role = row.user.role as Role;
    const known: KnownKey = {
      caller: {
        kind: "apiKey",
        apiKeyId: row.id,
        datasetIds: row.datasetIds,
        accountId: row.accountId,
        userId: row.user.id,
        role,
        // A key never holds more than its user's role allows, even if the role was lowered later.
        scopes: row.scopes.filter(isScope).filter((s) => ROLE_SCOPES[role].includes(s)),
        limits: planLimits(row.account.plan, row.account),
      },
      signingSecretEncrypted: row.signingSecretEncrypted,
      requireSignature: row.requireSignature,
      lastUsedAt: row.lastUsedAt,
    };
    const ends = [row.expiresAt, row.graceUntil].filter((d): d is Date => d !== null);
    const endsAt = ends.length ? new Date(Math.min(...ends.map((d) => d.getTime()))) : null;
    this.keys.set(digest, known, endsAt);
    return known;
  }

  private async checkSignature(keyId: string, encrypted: string | null, request?: SignedRequest) {
    if (!encrypted || !request)
      throw new AppError("UNAUTHENTICATED", "This API key requires signed requests");
    const tolerance = this.config.SIGNATURE_TOLERANCE_SECONDS;
    const nowSeconds = Math.floor(this.now().getTime() / 1000);
    const signature = verifySignedRequest(this.encryption.decrypt(encrypted), request, nowSeconds, tolerance);
    if (!(await this.nonces.claim(`${keyId}:${signature}`, tolerance * 2))) {
      throw new AppError("UNAUTHENTICATED", "Request signature already used (replay)");
    }
  }

  private async byToken(token: string): Promise<Caller> {
    const claims = verifyToken(token, this.config.JWT_SECRET, Math.floor(this.now().getTime() / 1000));
    if (!claims) throw new AppError("UNAUTHENTICATED", "Invalid or expired token");
    const known = this.users.get(claims.sub);
    if (known && known.caller.accountId === claims.acc) return known.caller;
    const user = await this.prisma.user.findUnique({
      where: { id: claims.sub },
      include: { account: { include: { plan: true } } },
    });
    if (!user || user.accountId !== claims.acc)
      throw new AppError("UNAUTHENTICATED", "Invalid or expired token");
    const refusal = accountRefusal(user.account);
    if (refusal) throw refusal;
    const role = user.role as Role;
    const caller: AuthenticatedCaller = {
      kind: "user",
      accountId: user.accountId,
      userId: user.id,
      role,
      scopes: ROLE_SCOPES[role],
      limits: planLimits(user.account.plan, user.account),
    };
    this.users.set(user.id, { caller });
    return caller;
  }

  /**
   * For long-lived connections (subscriptions), authenticated once: why each caller may no longer
   * continue (a key revoked, expired or rotated out, a token expired, a user gone, an account
   * suspended), or null while it still may. Two queries for any number of callers.
   */
  async lapsed(sessions: readonly LiveSession[]): Promise<(AppError | null)[]> {
    const now = this.now();
    const keyIds = sessions.flatMap((s) => (s.caller.kind === "apiKey" ? [s.caller.apiKeyId] : []));
    const userIds = sessions.flatMap((s) => (s.caller.kind === "user" ? [s.caller.userId] : []));
    const [keys, users] = await Promise.all([
      keyIds.length === 0
        ? []
        : this.prisma.apiKey.findMany({
            where: { id: { in: keyIds } },
            include: { account: true, user: { select: { id: true } } },
          }),
      userIds.length === 0
        ? []
        : this.prisma.user.findMany({ where: { id: { in: userIds } }, include: { account: true } }),
    ]);
    const keyById = new Map(keys.map((k) => [k.id, k]));
    const userById = new Map(users.map((u) => [u.id, u]));
    const nowSeconds = Math.floor(now.getTime() / 1000);
    return sessions.map(({ caller, token }) => {
      if (caller.kind === "apiKey") {
        const key = keyById.get(caller.apiKeyId);
        return key?.user ? keyRefusal(key, now) : new AppError("UNAUTHENTICATED", "Invalid API key");
      }
      const user = userById.get(caller.userId);
      if (
        !user ||
        user.accountId !== caller.accountId ||
        !verifyToken(token ?? "", this.config.JWT_SECRET, nowSeconds)
      ) {
        return new AppError("UNAUTHENTICATED", "Invalid or expired token");
      }
      return accountRefusal(user.account);
    });
  }

  /**
   * A new account with its first user and API key (whose secret is returned here only), granted
   * its plan's starting credits through the ledger.
   */
  async signup(
    input: SignupInput,
  ): Promise<{ account: Account; user: User; apiKey: ApiKey; secret: string }> {
    const email = normalizeEmail(input.email);
    const name = input.name.trim();
    if (name.length < 1 || name.length > 200) {
      throw new AppError("BAD_USER_INPUT", "Name must be 1 to 200 characters", { argument: "name" });
    }
    if (input.password != null) checkPassword(input.password);
    const passwordHash = input.password == null ? null : await hashPassword(input.password);
    const role: Role = input.role ?? "BUYER";
    return this.createAccount({ name, email, passwordHash, role, plan: "FREE" });
  }

  /** The first administrator of a new installation (CLI). */
  async createAdmin(input: { name: string; email: string; password: string }) {
    checkPassword(input.password);
    return this.createAccount({
      name: input.name,
      email: normalizeEmail(input.email),
      passwordHash: await hashPassword(input.password),
      role: "ADMIN",
      plan: "ENTERPRISE",
    });
  }

  private async createAccount(input: {
    name: string;
    email: string;
    passwordHash: string | null;
    role: Role;
    plan: "FREE" | "ENTERPRISE";
  }) {
    const key = generateApiKey();
    try {
      return await this.prisma.$transaction(async (tx) => {
        const plan = await tx.plan.findUniqueOrThrow({ where: { code: input.plan } });
        const credits = plan.startingCredits;
        const account = await tx.account.create({
          data: {
            name: input.name,
            slug: await uniqueSlug(tx, input.name),
            planId: plan.id,
            creditBalance: credits,
          },
        });
        const user = await tx.user.create({
          data: {
            accountId: account.id,
            email: input.email,
            name: input.name,
            role: input.role,
            passwordHash: input.passwordHash,
          },
        });
        const apiKey = await tx.apiKey.create({
          data: {
            accountId: account.id,
            userId: user.id,
            name: "Default key",
            prefix: key.prefix,
            secretHash: key.secretHash,
            scopes: [...ROLE_SCOPES[input.role]],
          },
        });
        if (credits > 0n) {
          await tx.creditTransaction.create({
            data: {
              accountId: account.id,
              kind: "TOP_UP",
              amount: credits,
              balanceAfter: credits,
              idempotencyKey: "signup-grant",
              reference: `${plan.code} plan starting credits`,
            },
          });
        }
        return { account, user, apiKey, secret: key.key };
      });
    } catch (error) {
      translatePrismaError(error, "email");
    }
  }

  /** A short-lived dashboard token. Unknown emails cost the same time as wrong passwords. */
  async login(emailInput: string, password: string): Promise<Session> {
    const failed = new AppError("UNAUTHENTICATED", "Invalid email or password");
    const email = emailInput.trim().toLowerCase();
    const user = await this.prisma.user.findUnique({ where: { email }, include: { account: true } });
    const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_PASSWORD_HASH);
    if (!user || !user.passwordHash || !ok) throw failed;
    if (user.account.status === "SUSPENDED") throw new AppError("FORBIDDEN", "Account suspended");
    const now = this.now();
    const { token, expiresAt } = signToken(
      { sub: user.id, acc: user.accountId, role: user.role },
      this.config.JWT_SECRET,
      this.config.JWT_TTL_SECONDS,
      Math.floor(now.getTime() / 1000),
    );
    await this.prisma.user.update({ where: { id: user.id }, data: { lastLoginAt: now } });
    return { token, expiresAt: new Date(expiresAt * 1000), user };
  }
}

/** A caller authenticated once for a long-lived connection; `token` for dashboard sessions. */
export interface LiveSession {
  caller: AuthenticatedCaller;
  token?: string;
}

function accountRefusal(account: Pick<Account, "status">): AppError | null {
  return account.status === "SUSPENDED" ? new AppError("FORBIDDEN", "Account suspended") : null;
}

function keyRefusal(
  key: Pick<ApiKey, "revokedAt" | "expiresAt" | "graceUntil"> & { account: Pick<Account, "status"> },
  now: Date,
): AppError | null {
  if (key.revokedAt) return new AppError("UNAUTHENTICATED", "API key revoked");
  if (key.expiresAt && key.expiresAt <= now) return new AppError("UNAUTHENTICATED", "API key expired");
  if (key.graceUntil && key.graceUntil <= now) {
    return new AppError("UNAUTHENTICATED", "API key rotated; use its replacement");
  }
  return accountRefusal(key.account);
}

type Tx = Parameters<Parameters<PrismaClient["$transaction"]>[0]>[0];

async function uniqueSlug(tx: Tx, name: string): Promise<string> {
  const base =
    name
      .toLowerCase()
      .normalize("NFKD")
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 40) || "account";
  const taken = await tx.account.findUnique({ where: { slug: base }, select: { id: true } });
  return taken ? `${base}-${crypto.randomUUID().slice(0, 8)}` : base;
}
