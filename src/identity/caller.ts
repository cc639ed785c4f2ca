// Who is calling. Every service read and write receives one. Built per request by
// identity/auth.service.ts from an API key or a dashboard token.
export type Role = "ADMIN" | "PUBLISHER" | "BUYER";

/**
 * What a credential may do, on top of its role. API keys carry a subset of their role's scopes;
 * dashboard sessions carry all of them.
 */
export const SCOPES = {
  "catalog:read": "browse datasets and their metadata",
  "records:read": "read, aggregate and export records (charged in credits)",
  "account:read": "read the account, its credits, usage, purchases and sales",
  "account:write": "manage API keys, buy datasets, configure deliveries",
  "datasets:write": "create, change and publish datasets",
  "pipelines:read": "read sources, pipelines, runs and their logs",
  "pipelines:write": "manage sources and pipelines and run them",
  admin: "operate the platform: accounts, plans, credits",
} as const;

export type Scope = keyof typeof SCOPES;

export const ROLE_SCOPES: Record<Role, readonly Scope[]> = {
  BUYER: ["catalog:read", "records:read", "account:read", "account:write"],
  PUBLISHER: [
    "catalog:read",
    "records:read",
    "account:read",
    "account:write",
    "datasets:write",
    "pipelines:read",
    "pipelines:write",
  ],
  ADMIN: Object.keys(SCOPES) as Scope[],
};

export const isScope = (value: string): value is Scope => Object.hasOwn(SCOPES, value);

/** The rate limits of the caller's plan (or account override). */
export interface PlanLimits {
  perMinute: number;
  perHour: number | null;
  perMonth: number | null;
}

interface Authenticated {
  accountId: string;
  userId: string;
  role: Role;
  scopes: readonly Scope[];
  limits: PlanLimits;
}

export type Caller =
  | { kind: "anonymous" }
  /** Background jobs and CLI commands acting for the platform itself. */
  | { kind: "system" }
  | ({ kind: "user" } & Authenticated)
  | ({
      kind: "apiKey";
      apiKeyId: string;
      /** Datasets the key is limited to; absent or empty: every dataset the account may read. */
      datasetIds?: readonly string[];
    } & Authenticated);

export type AuthenticatedCaller = Extract<Caller, { kind: "user" | "apiKey" }>;

export const anonymous: Caller = { kind: "anonymous" };
export const system: Caller = { kind: "system" };

export const isAuthenticated = (caller: Caller): caller is AuthenticatedCaller =>
  caller.kind === "user" || caller.kind === "apiKey";
