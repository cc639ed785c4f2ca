// The one place that decides what a caller may do. GraphQL fields declare their rule with
// `@Authorized(...)`; services call `authorize` for the same rules on their own paths.
import type { AuthChecker } from "type-graphql";
import { AppError } from "../errors.js";
import {
  ROLE_SCOPES,
  isAuthenticated,
  isScope,
  type AuthenticatedCaller,
  type Caller,
  type Role,
} from "./caller.js";

const ROLES: readonly string[] = ["ADMIN", "PUBLISHER", "BUYER"];

/**
 * Rules are role names (any one suffices; ADMIN passes every role rule) and scopes (all needed).
 * No rules at all means "any authenticated caller".
 */
export function authorize(caller: Caller, rules: readonly string[] = []): AuthenticatedCaller {
  if (caller.kind === "system") return systemAsAdmin;
  if (!isAuthenticated(caller)) throw new AppError("UNAUTHENTICATED", "Authentication required");
  const roles = rules.filter((r) => ROLES.includes(r)) as Role[];
  const scopes = rules.filter(isScope);
  if (roles.length > 0 && caller.role !== "ADMIN" && !roles.includes(caller.role)) {
    throw new AppError("FORBIDDEN", `Requires the ${roles.join(" or ")} role`, { requiredRoles: roles });
  }
  const missing = scopes.filter((s) => !caller.scopes.includes(s));
  if (missing.length > 0) {
    throw new AppError("FORBIDDEN", `Missing scope ${missing.join(", ")}`, { requiredScopes: missing });
  }
  return caller;
}

/**
 * A key limited to chosen datasets may touch only those: FORBIDDEN elsewhere (the dataset exists
 * and its account may read it; the key may not).
 */
export function checkKeyDatasets(caller: AuthenticatedCaller, datasetId: string): void {
  if (caller.kind !== "apiKey" || !caller.datasetIds || caller.datasetIds.length === 0) return;
  if (!caller.datasetIds.includes(datasetId)) {
    throw new AppError("FORBIDDEN", "This API key is limited to other datasets", { keyDatasetScoped: true });
  }
}

// Jobs act for the platform; they never go through GraphQL, but services they call may authorize.
const systemAsAdmin: AuthenticatedCaller = {
  kind: "user",
  accountId: "00000000-0000-0000-0000-000000000000",
  userId: "00000000-0000-0000-0000-000000000000",
  role: "ADMIN",
  scopes: ROLE_SCOPES.ADMIN,
  limits: { perMinute: 0, perHour: null, perMonth: null },
};

export const authChecker: AuthChecker<{ caller: Caller }, string> = ({ context }, rules) => {
  authorize(context.caller, rules);
  return true;
};
