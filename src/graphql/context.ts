import type { Caller } from "../identity/caller.js";
import type { FastifyBaseLogger } from "fastify";
import type { CostMeter } from "../records/read.service.js";
import type { Services } from "../services.js";
import type { Loaders } from "./loaders.js";

/** What every resolver receives. Built once per request (http/graphql-route.ts). */
export interface Context {
  requestId: string;
  log: FastifyBaseLogger;
  caller: Caller;
  services: Services;
  loaders: Loaders;
  /** What this request's reads cost; reported in extensions.cost and X-Credits-Remaining. */
  meter: CostMeter;
}
