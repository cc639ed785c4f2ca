// Who is calling. Every service read and write receives one; the Access issue fills in the
// authenticated kinds (API keys, dashboard users) and the rules in read-scope.ts.
export type Role = "ADMIN" | "PUBLISHER" | "BUYER";

export type Caller =
  | { kind: "anonymous" }
  /** Background jobs and CLI commands acting for the platform itself. */
  | { kind: "system" }
  | { kind: "user"; accountId: string; userId: string; role: Role }
  | { kind: "apiKey"; accountId: string; apiKeyId: string; role: Role; scopes: readonly string[] };

export const anonymous: Caller = { kind: "anonymous" };
export const system: Caller = { kind: "system" };
