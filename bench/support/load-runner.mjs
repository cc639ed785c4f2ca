// The load generator of bench/load.bench.ts, in a process of its own so that it does not share
// the API's event loop: autocannon with N connections for D seconds against one GraphQL request.
// Prints one JSON object: answers by status, the error codes of 5xx bodies, and the latency
// quantiles of the answered (non-503) and the shed (503) requests, in ms.
import autocannon from "autocannon";

const [url, headersJson, body, connections, seconds] = process.argv.slice(2);
const latencies = new Map();
const codes = {};
const instance = autocannon({
  url: `${url}/graphql`,
  method: "POST",
  headers: { "content-type": "application/json", ...JSON.parse(headersJson) },
  body,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      onResponse(status, responseBody) {
        if (status >= 500) {
          let code = "unparsable";
          try {
            code = JSON.parse(responseBody).errors?.[0]?.extensions?.code ?? "none";
          } catch {
            // counted as unparsable
          }
          codes[`${status} ${code}`] = (codes[`${status} ${code}`] ?? 0) + 1;
        }
      },
    },
  ],
});
instance.on("response", (_client, status, _bytes, responseTime) => {
  const list = latencies.get(status) ?? [];
  list.push(responseTime);
  latencies.set(status, list);
});
const result = await instance;
const q = (sorted, p) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : null;
const summary = (list) => {
  const sorted = [...list].sort((a, b) => a - b);
  return { count: sorted.length, p50: q(sorted, 0.5), p99: q(sorted, 0.99), max: sorted.at(-1) ?? null };
};
const answered = [...latencies].filter(([s]) => s !== 503).flatMap(([, l]) => l);
process.stdout.write(
  JSON.stringify({
    statuses: Object.fromEntries([...latencies].map(([s, l]) => [s, l.length])),
    codes,
    statusCodeStats: result.statusCodeStats,
    sent: result.requests.sent,
    errors: result.errors,
    timeouts: result.timeouts,
    answered: summary(answered),
    shed: summary(latencies.get(503) ?? []),
    requestsPerSecond: result.requests.average,
  }),
);
