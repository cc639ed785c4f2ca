// The load generator of bench/requests.bench.ts, in a process of its own so that it does not share
// the servers' event loop: autocannon with N connections for D seconds, each request's body (or
// path) picked at random from a list, so that pages are read at random cursors. Prints one JSON
// object (the spec is a JSON file named by the first argument): requests per second, latency p50/p99 (ms), and what was not a 2xx.
import { readFileSync } from "node:fs";
import autocannon from "autocannon";

const spec = JSON.parse(readFileSync(process.argv[2], "utf8"));
const { url, method, headers, bodies, paths, connections, seconds } = spec;
const pick = (list) => list[Math.floor(Math.random() * list.length)];
const latencies = [];
let non2xx = 0;
let firstError = null;
const instance = autocannon({
  url,
  method,
  headers,
  connections,
  duration: seconds,
  requests: [
    {
      setupRequest(request) {
        if (bodies) request.body = pick(bodies);
        if (paths) request.path = pick(paths);
        return request;
      },
      onResponse(status, body) {
        if (status < 200 || status > 299 || body.includes('"errors"')) {
          non2xx++;
          firstError ??= `${status} ${body.slice(0, 300)}`;
        }
      },
    },
  ],
});
instance.on("response", (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
const result = await instance;
latencies.sort((a, b) => a - b);
const q = (p) =>
  latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] : null;
process.stdout.write(
  JSON.stringify({
    requests: latencies.length,
    requestsPerSecond: latencies.length / seconds,
    p50: q(0.5),
    p99: q(0.99),
    non2xx,
    errors: result.errors,
    firstError,
  }),
);
