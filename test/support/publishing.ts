// A publisher's journey through the API, for end-to-end tests: datasets, sources, pipelines, runs
// worked by a real worker, and what buyers then read. Runs are awaited by polling PostgreSQL (the
// API is rate limited); everything else goes through GraphQL.
import { expect } from "vitest";
import { decodeGlobalId } from "../../src/graphql/relay.js";
import {
  CreateDatasetDocument,
  CreatePipelineDocument,
  CreateSourceDocument,
  PipelineRunDetailDocument,
  RecordsDocument,
  RunPipelineDocument,
  type CreateDatasetMutationVariables,
  type SourceType,
} from "../generated/graphql.js";
import { uniqueName } from "./databases.js";
import type { GraphQLResponse, TestAccount, TestStack } from "./stack.js";

type DatasetInput = CreateDatasetMutationVariables["input"];

export function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  return res.data!;
}

export interface Dataset {
  id: string;
  rawId: string;
  slug: string;
}

export function publishing(stack: TestStack, publisher: TestAccount) {
  const prisma = () => stack.app.stores.prisma;

  async function runDetail(runId: string) {
    const res = await stack.graphql(PipelineRunDetailDocument, { id: runId }, publisher.headers);
    const node = res.data?.node;
    if (!node || !("status" in node)) throw new Error(JSON.stringify(res));
    return node as Extract<typeof node, { status: unknown }>;
  }

  return {
    async dataset(columns: DatasetInput["columns"], extra: Partial<DatasetInput> = {}): Promise<Dataset> {
      const slug = uniqueName("e2e").toLowerCase();
      const input = {
        slug,
        title: slug,
        category: "e2e",
        access: "OPEN" as const,
        keyColumns: ["id"],
        columns,
      };
      const res = await stack.graphql(
        CreateDatasetDocument,
        { input: { ...input, ...extra } },
        publisher.headers,
      );
      const id = ok(res).createDataset.id;
      return { id, rawId: decodeGlobalId(id).id, slug };
    },

    async source(type: SourceType, config: Record<string, unknown>, secrets?: Record<string, string>) {
      const res = await stack.graphql(
        CreateSourceDocument,
        { input: { name: `${type} source`, type, config, secrets } },
        publisher.headers,
      );
      return ok(res).createSource.id;
    },

    async pipeline(
      sourceId: string,
      datasetId: string,
      mode: "FULL_REFRESH" | "INCREMENTAL",
      steps: unknown = [],
    ) {
      const res = await stack.graphql(
        CreatePipelineDocument,
        { input: { sourceId, datasetId, name: "e2e", mode, steps } },
        publisher.headers,
      );
      return ok(res).createPipeline.id;
    },

    async run(pipelineId: string): Promise<string> {
      return ok(await stack.graphql(RunPipelineDocument, { id: pipelineId }, publisher.headers)).runPipeline
        .id;
    },

    runDetail,

    /** Waits for the run to end, then its detail (logs, rejected rows). */
    async finished(runId: string, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      const id = decodeGlobalId(runId).id;
      for (;;) {
        const row = await prisma().pipelineRun.findUniqueOrThrow({ where: { id } });
        if (["SUCCEEDED", "FAILED", "CANCELLED"].includes(row.status)) return runDetail(runId);
        if (Date.now() > deadline) throw new Error(`run ${runId} did not finish (${row.status})`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },

    /** Every record of the dataset as a reader gets them, ordered by id. */
    async records(slug: string, who = publisher) {
      const res = await stack.graphql(
        RecordsDocument,
        { slug, first: 100, orderBy: [{ column: "id", direction: "ASC" }] },
        who.headers,
      );
      return ok(res).dataset!.records.edges.map((e) => e.node.values as Record<string, unknown>);
    },

    /** The dataset's stored version and row count. */
    async state(dataset: Dataset) {
      const row = await prisma().dataset.findUniqueOrThrow({ where: { id: dataset.rawId } });
      return { version: row.version, rowCount: Number(row.rowCount) };
    },
  };
}
