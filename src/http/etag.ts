// Conditional GETs: a response that may be cached (its Cache-Control is not no-store) gets a
// strong ETag of its body, and a GET sending that tag back in If-None-Match gets 304 and no body.
// Our own hook rather than @fastify/etag, which tags every response (POSTs and errors included)
// and answers 304 to any method.
import { createHash } from "node:crypto";
import type { FastifyInstance } from "fastify";

export function registerEtags(app: FastifyInstance): void {
  app.addHook("onSend", async (request, reply, payload) => {
    if (request.method !== "GET" || reply.statusCode !== 200) return payload;
    if (!(typeof payload === "string" || Buffer.isBuffer(payload))) return payload;
    const cacheControl = String(reply.getHeader("cache-control") ?? "");
    if (cacheControl === "" || /no-store/.test(cacheControl)) return payload;
    const etag = `"${createHash("sha256").update(payload).digest("base64url").slice(0, 27)}"`;
    reply.header("etag", etag);
    const given = request.headers["if-none-match"];
    if (given && given.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag)) {
      reply.code(304);
      return "";
    }
    return payload;
  });
}
