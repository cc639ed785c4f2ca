// A loopback stand-in for the part of Stripe's HTTP API the app calls (creating Checkout
// Sessions), started by the test: Stripe itself cannot be reached from here. It answers as Stripe
// documents (form-encoded request, JSON session, the Idempotency-Key honoured) and records every
// request, so tests check what the official `stripe` package sent. Webhooks are signed by the test
// with the package's own `generateTestHeaderString`, with the endpoint secret the app was given.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";

export interface StandinRequest {
  method: string;
  path: string;
  idempotencyKey: string | undefined;
  authorization: string | undefined;
  form: URLSearchParams;
}

export interface StripeStandin {
  url: string;
  requests: StandinRequest[];
  /** Sessions made, by id, as they would be on completion (paid). */
  sessions: Map<string, Record<string, unknown>>;
  close(): Promise<void>;
}

export async function startStripeStandin(): Promise<StripeStandin> {
  const requests: StandinRequest[] = [];
  const sessions = new Map<string, Record<string, unknown>>();
  const byKey = new Map<string, string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const form = new URLSearchParams(Buffer.concat(chunks).toString("utf8"));
      const idempotencyKey = req.headers["idempotency-key"] as string | undefined;
      requests.push({
        method: req.method ?? "",
        path: req.url ?? "",
        idempotencyKey,
        authorization: req.headers.authorization,
        form,
      });
      res.setHeader("content-type", "application/json");
      if (req.method !== "POST" || req.url !== "/v1/checkout/sessions") {
        res.statusCode = 404;
        res.end(
          JSON.stringify({ error: { type: "invalid_request_error", message: "Unrecognized request URL" } }),
        );
        return;
      }
      let id = idempotencyKey ? byKey.get(idempotencyKey) : undefined;
      if (!id) {
        id = `cs_test_${sessions.size + 1}${Math.random().toString(36).slice(2, 10)}`;
        if (idempotencyKey) byKey.set(idempotencyKey, id);
        sessions.set(id, {
          id,
          object: "checkout.session",
          mode: "payment",
          status: "open",
          payment_status: "unpaid",
          client_reference_id: form.get("client_reference_id"),
          currency: form.get("line_items[0][price_data][currency]"),
          amount_total: Number(form.get("line_items[0][price_data][unit_amount]")),
          metadata: { orderId: form.get("metadata[orderId]") },
          url: `https://checkout.stripe.test/c/pay/${id}`,
        });
      }
      res.end(JSON.stringify(sessions.get(id)));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    sessions,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

const signer = new Stripe("sk_test_signer_only");

/** A Stripe event body and its Stripe-Signature header, signed with `secret`. */
export function signedEvent(
  secret: string,
  event: { id: string; type: string; object: Record<string, unknown> },
): { body: string; signature: string } {
  const body = JSON.stringify({
    id: event.id,
    object: "event",
    api_version: "2025-01-01",
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    type: event.type,
    data: { object: event.object },
  });
  return { body, signature: signer.webhooks.generateTestHeaderString({ payload: body, secret }) };
}
