// Rows appended outside a pipeline run (a stream consumer, the event endpoints) move the
// dataset's version and row count on and tell listeners (subscriptions, deliveries), at most
// every few seconds per writer rather than per batch.
import type { ClickHouse } from "../db/clickhouse.js";
import { newEvent, type EventBus } from "../events/events.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import { countLiveRows } from "../pipelines/run-tables.js";

/** The dataset's version, row count and dataset.updated event, at most this often per writer. */
export const DATASET_INTERVAL_MS = 5000;

export interface ProgressDeps {
  prisma: PrismaClient;
  clickhouse: ClickHouse;
  database: string;
  events: EventBus;
}

export async function recordAppended(
  deps: ProgressDeps,
  dataset: { id: string; accountId: string; tableName: string },
  changedRows: number,
  runId: string,
): Promise<void> {
  const rowCount = await countLiveRows(deps.clickhouse, deps.database, dataset.tableName);
  const updated = await deps.prisma.dataset.update({
    where: { id: dataset.id },
    data: { version: { increment: 1 }, rowCount, lastUpdatedAt: new Date() },
  });
  await deps.events.publish(
    newEvent("dataset.updated", {
      datasetId: dataset.id,
      accountId: dataset.accountId,
      version: updated.version,
      rowCount,
      changedRows,
      cause: "PIPELINE_RUN",
      runId,
    }),
  );
}
