// A second process putting load on a test stack (test/integration/store-outages.test.ts): loops
// over a few requests that touch every store and prints one JSON line per answer:
// { t, path, status, code }. Stops on SIGTERM.
/* global fetch, setTimeout */
const [url, headersJson, slug] = process.argv.slice(2);
const headers = { "content-type": "application/json", ...JSON.parse(headersJson) };
const requests = [
  [
    "me",
    () =>
      fetch(`${url}/graphql`, {
        method: "POST",
        headers,
        body: JSON.stringify({ query: "{ me { account { creditBalance } } }" }),
      }),
  ],
  [
    "records",
    () =>
      fetch(`${url}/graphql`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          query: `{ dataset(slug: "${slug}") { records(first: 5) { edges { cursor } } } }`,
        }),
      }),
  ],
  ["rest", () => fetch(`${url}/api/v1/data/query?dataset=${slug}&limit=5`, { headers })],
];
let stopping = false;
process.on("SIGTERM", () => (stopping = true));
async function worker() {
  for (let i = 0; !stopping; i++) {
    const [path, send] = requests[i % requests.length];
    let status;
    let code = null;
    try {
      const response = await send();
      status = response.status;
      const body = await response.json().catch(() => ({}));
      code = body.errors?.[0]?.extensions?.code ?? body.error?.code ?? null;
    } catch {
      status = -1;
    }
    process.stdout.write(`${JSON.stringify({ t: Date.now(), path, status, code })}\n`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
await Promise.all([worker(), worker(), worker(), worker()]);
