// Money over plain HTTP: the Stripe webhook (signed by Stripe, so no API key: its signature over
// the raw body is the credential) and statement downloads (CSV, PDF) for the caller's account.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Caller } from "../identity/caller.js";
import type { Services } from "../services.js";

export interface MoneyRouteDeps {
  services: Services;
  identify: (request: FastifyRequest, reply: FastifyReply) => Promise<void>;
  callerOf: (request: FastifyRequest) => Caller;
  /** The request body exactly as received (the server keeps it for signature checks). */
  rawBodyOf: (request: FastifyRequest) => Buffer | undefined;
}

export async function registerMoneyRoutes(app: FastifyInstance, deps: MoneyRouteDeps): Promise<void> {
  const { services } = deps;

  // Stripe retries anything but a 2xx for days: a replayed or unrelated event is answered 200,
  // a body Stripe did not sign 400 (nothing of it read).
  app.post("/api/v1/payments/stripe/webhook", async (request) => {
    const signature = request.headers["stripe-signature"];
    const outcome = await services.packs.stripeWebhook(
      deps.rawBodyOf(request) ?? Buffer.alloc(0),
      typeof signature === "string" ? signature : undefined,
    );
    return { received: true, eventId: outcome.eventId, applied: outcome.applied };
  });
}
