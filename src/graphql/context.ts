import type { Caller } from "../identity/caller.js";
import type { FastifyBaseLogger } from "fastify";
import type { CostMeter } from "../records/read.service.js";
import type { Services } from "../services.js";
import type { LiveService } from "../subscriptions/live.service.js";
import type { Loaders } from "./loaders.js";

/**
 * What every resolver receives. Built once per HTTP request (http/server.ts) and once per
 * subscription (http/subscriptions.ts), whose events each get fresh `loaders`.
 */
export interface Context {
  requestId: string;
  log: FastifyBaseLogger;
  caller: Caller;
  services: Services;
  loaders: Loaders;
  /** What this request's reads cost; reported in extensions.cost and X-Credits-Remaining. */
  meter: CostMeter;
  /** Live subscriptions: this process's Redis channels and who may follow what. */
  live: LiveService;
}
