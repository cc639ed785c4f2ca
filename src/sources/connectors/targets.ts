// Sources are addresses publishers choose, so every connection a connector opens is checked under
// the operator's outbound policy (src/net/outbound.ts): at create/update time, so a refused target
// is a clear input error, and again at each connect, pinned to the addresses just checked, so a
// DNS answer that changes afterwards (rebinding) cannot reach our own network.
import type { LookupAddress } from "node:dns";
import { badInput } from "../../errors.js";
import {
  OutboundRefused,
  checkHost,
  checkTarget,
  type CheckedTarget,
  type OutboundPolicy,
} from "../../net/outbound.js";

/** An OutboundRefused as the input error it is, naming the setting; anything else rethrown. */
export function refusedTarget(field: string, error: unknown): unknown {
  if (!(error instanceof OutboundRefused)) return error;
  const problem = `${field}: ${error.message}`;
  return badInput(`Invalid source: ${problem}`, { problems: [problem], refused: true });
}

/** The addresses `host` may be reached at, or BAD_USER_INPUT naming `field`. */
export async function allowedHost(
  field: string,
  host: string,
  policy: OutboundPolicy,
): Promise<LookupAddress[]> {
  try {
    return await checkHost(host, policy);
  } catch (error) {
    throw refusedTarget(field, error);
  }
}

/** `allowedHost` for an http(s) URL. */
export async function allowedUrl(field: string, url: string, policy: OutboundPolicy): Promise<CheckedTarget> {
  try {
    return await checkTarget(url, policy);
  } catch (error) {
    throw refusedTarget(field, error);
  }
}
