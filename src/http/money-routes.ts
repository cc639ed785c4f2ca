// Money over plain HTTP: the Stripe webhook (signed by Stripe, so no API key: its signature over
// the raw body is the credential) and statement downloads (CSV, PDF) for the caller's account.
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { badInput } from "../errors.js";
import { decodeGlobalId } from "../graphql/relay.js";
import type { Caller } from "../identity/caller.js";
import type { Services } from "../services.js";
import { statementCsv } from "../statements/statement.js";
import { statementPdf } from "../statements/statement.pdf.js";

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

  // GET /api/v1/statements/2026-12.csv (or .pdf); admins add ?accountId=<global id>.
  app.get<{ Params: { file: string }; Querystring: { accountId?: string } }>(
    "/api/v1/statements/:file",
    { preHandler: async (request, reply) => deps.identify(request, reply) },
    async (request, reply) => {
      const match = /^(\d{4}-\d{2})\.(csv|pdf)$/.exec(request.params.file);
      if (!match) throw badInput("Ask for {YYYY-MM}.csv or {YYYY-MM}.pdf", { argument: "file" });
      const [, month, format] = match as unknown as [string, string, "csv" | "pdf"];
      const accountId = request.query.accountId
        ? decodeGlobalId(request.query.accountId, ["Account"]).id
        : null;
      const statement = await services.statements.statement(deps.callerOf(request), month, accountId);
      reply.header("cache-control", "private, no-store");
      reply.header("content-disposition", `attachment; filename="datahus-statement-${month}.${format}"`);
      if (format === "csv") return reply.type("text/csv; charset=utf-8").send(statementCsv(statement));
      return reply.type("application/pdf").send(await statementPdf(statement));
    },
  );
}
