// Sources, pipelines and runs over REST through a client generated from /openapi.json
// (openapi-typescript + openapi-fetch, test/generated/openapi.ts): a publisher's whole round, a run
// worked by a real worker, and every route scoped to the caller's account as GraphQL is.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import createClient from "openapi-fetch";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PipelineRunDetailDocument } from "../generated/graphql.js";
import type { paths } from "../generated/openapi.js";
import { ok, publishing } from "../support/publishing.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

let stack: TestStack;
let api: Server;
let apiUrl: string;
let publisher: TestAccount;
let other: TestAccount;
let buyer: TestAccount;
let datasetId: string;

const client = (who?: TestAccount) =>
  createClient<paths>({ baseUrl: stack.url, headers: who ? who.headers : {} });

beforeAll(async () => {
  api = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json" }).end(
      JSON.stringify([
        { id: "a", n: 1 },
        { id: "b", n: 2 },
        { id: "c", n: "not a number" },
      ]),
    );
  });
  await new Promise<void>((resolve) => api.listen(0, "127.0.0.1", resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  stack = await startStack({ OUTBOUND_ALLOW_CIDRS: "127.0.0.0/8" }, { worker: true });
  publisher = await stack.signup("REST publisher", "PUBLISHER");
  other = await stack.signup("Other publisher", "PUBLISHER");
  buyer = await stack.signup("REST buyer");
  const dataset = await publishing(stack, publisher).dataset([
    { name: "id", type: "STRING", nullable: false },
    { name: "n", type: "INT32", nullable: true },
  ]);
  datasetId = dataset.id;
}, 60_000);

afterAll(async () => {
  await stack?.close();
  await new Promise((resolve) => api.close(resolve));
});

async function finished(runId: string) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { data } = await client(publisher).GET("/api/v1/runs/{id}", { params: { path: { id: runId } } });
    if (data && ["SUCCEEDED", "FAILED", "CANCELLED"].includes(data.status)) return data;
    if (Date.now() > deadline) throw new Error(`run ${runId} did not finish (${data?.status})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("sources and pipelines over REST", () => {
  it("creates, reads, runs, schedules and deletes them as GraphQL does", async () => {
    const rest = client(publisher);
    const created = await rest.POST("/api/v1/sources", {
      body: {
        name: "Loopback API",
        type: "HTTP",
        config: { url: `${apiUrl}/items` },
        secrets: { token: "s3cret" },
      },
    });
    expect(created.response.status).toBe(201);
    const source = created.data!;
    expect(source).toMatchObject({ name: "Loopback API", type: "HTTP", hasSecrets: true, schedule: null });
    expect(JSON.stringify(source)).not.toContain("s3cret");
    expect(Date.parse(source.createdAt)).not.toBeNaN();

    const listed = await rest.GET("/api/v1/sources", { params: { query: { limit: 10 } } });
    expect(listed.data!.data.map((s) => s.id)).toEqual([source.id]);
    expect(listed.data!.next_cursor).toBeNull();
    const renamed = await rest.PATCH("/api/v1/sources/{id}", {
      params: { path: { id: source.id } },
      body: { name: "Loopback items" },
    });
    expect(renamed.data).toMatchObject({ id: source.id, name: "Loopback items", hasSecrets: true });

    const made = await rest.POST("/api/v1/pipelines", {
      body: { sourceId: source.id, datasetId, name: "items", mode: "FULL_REFRESH", steps: [] },
    });
    expect(made.response.status).toBe(201);
    const pipeline = made.data!;
    expect(pipeline).toMatchObject({ sourceId: source.id, datasetId, name: "items", enabled: false });

    const queued = await rest.POST("/api/v1/pipelines/{id}/runs", { params: { path: { id: pipeline.id } } });
    expect(queued.response.status).toBe(202);
    expect(queued.data).toMatchObject({ pipelineId: pipeline.id, status: "QUEUED", trigger: "MANUAL" });
    const run = await finished(queued.data!.id);
    expect(run).toMatchObject({ status: "SUCCEEDED", rowsRead: 3, rowsWritten: 2, rowsRejected: 1 });
    // The same run, the same id, through GraphQL.
    const detail = ok(await stack.graphql(PipelineRunDetailDocument, { id: run.id }, publisher.headers));
    expect(detail.node).toMatchObject({ id: run.id, status: "SUCCEEDED", rowsWritten: 2 });

    const runs = await rest.GET("/api/v1/pipelines/{id}/runs", {
      params: { path: { id: pipeline.id }, query: { limit: 5 } },
    });
    expect(runs.data!.data.map((r) => r.id)).toEqual([run.id]);
    const logs = await rest.GET("/api/v1/pipelines/{id}/logs", {
      params: { path: { id: pipeline.id }, query: { limit: 50 } },
    });
    expect(logs.data!.data.map((l) => l.message)).toContain("Run started");
    expect(logs.data!.data.every((l) => l.runId === run.id)).toBe(true);
    const metrics = await rest.GET("/api/v1/sources/{id}/metrics", { params: { path: { id: source.id } } });
    expect(metrics.data).toMatchObject({
      pipelines: 1,
      runs: 1,
      failedRuns: 0,
      rowsWritten: 2,
      rowsRejected: 1,
    });
    expect(metrics.data!.lastStatus).toBe("SUCCEEDED");

    // A schedule, started and stopped; a sync runs the started pipelines only.
    await rest.PATCH("/api/v1/pipelines/{id}", {
      params: { path: { id: pipeline.id } },
      body: { schedule: "0 3 * * *" },
    });
    const started = await rest.POST("/api/v1/pipelines/{id}/start", {
      params: { path: { id: pipeline.id } },
    });
    expect(started.data).toMatchObject({ enabled: true, schedule: "0 3 * * *" });
    const synced = await rest.POST("/api/v1/sources/{id}/sync", { params: { path: { id: source.id } } });
    expect(synced.response.status).toBe(202);
    expect(synced.data!.map((r) => r.pipelineId)).toEqual([pipeline.id]);
    await finished(synced.data![0]!.id);
    const stopped = await rest.POST("/api/v1/pipelines/{id}/stop", { params: { path: { id: pipeline.id } } });
    expect(stopped.data!.enabled).toBe(false);
    const none = await rest.POST("/api/v1/sources/{id}/sync", { params: { path: { id: source.id } } });
    expect(none.data).toEqual([]);

    const gone = await rest.DELETE("/api/v1/pipelines/{id}", { params: { path: { id: pipeline.id } } });
    expect(gone.data!.id).toBe(pipeline.id);
    expect(
      (await rest.DELETE("/api/v1/sources/{id}", { params: { path: { id: source.id } } })).data!.id,
    ).toBe(source.id);
    const after = await rest.GET("/api/v1/sources/{id}", { params: { path: { id: source.id } } });
    expect(after.response.status).toBe(404);
    expect(after.error!.error.code).toBe("NOT_FOUND");
  }, 90_000);

  it("keeps each account to its own, with GraphQL's codes and statuses", async () => {
    const mine = await client(publisher).POST("/api/v1/sources", {
      body: { name: "Private", type: "PUSH", config: {} },
    });
    const id = mine.data!.id;

    // Another publisher: not found, not forbidden (it must not learn the id exists).
    const theirs = client(other);
    const read = await theirs.GET("/api/v1/sources/{id}", { params: { path: { id } } });
    expect(read.response.status).toBe(404);
    expect(read.error!.error.code).toBe("NOT_FOUND");
    expect((await theirs.GET("/api/v1/sources", { params: { query: { limit: 10 } } })).data!.data).toEqual(
      [],
    );
    const patched = await theirs.PATCH("/api/v1/sources/{id}", {
      params: { path: { id } },
      body: { name: "x" },
    });
    expect(patched.response.status).toBe(404);
    const metrics = await theirs.GET("/api/v1/sources/{id}/metrics", { params: { path: { id } } });
    expect(metrics.response.status).toBe(404);
    const stolen = await theirs.POST("/api/v1/pipelines", {
      body: { sourceId: id, datasetId, name: "stolen", steps: [] },
    });
    expect(stolen.response.status).toBe(404);

    // A buyer may not write; nobody without a key may read.
    const bought = await client(buyer).POST("/api/v1/sources", {
      body: { name: "b", type: "PUSH", config: {} },
    });
    expect(bought.response.status).toBe(403);
    expect(bought.error!.error.code).toBe("FORBIDDEN");
    const anonymous = await client().GET("/api/v1/pipelines", { params: { query: { limit: 1 } } });
    expect(anonymous.response.status).toBe(401);
    expect(anonymous.error!.error.code).toBe("UNAUTHENTICATED");

    // Malformed ids and bodies are 400 BAD_USER_INPUT.
    const malformed = await client(publisher).GET("/api/v1/runs/{id}", { params: { path: { id: "nope" } } });
    expect(malformed.response.status).toBe(400);
    expect(malformed.error!.error.code).toBe("BAD_USER_INPUT");
    const wrongType = await client(publisher).GET("/api/v1/pipelines/{id}", { params: { path: { id } } });
    expect(wrongType.response.status).toBe(400);
  });
});
