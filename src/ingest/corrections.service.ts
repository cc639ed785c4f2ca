// Record corrections: a publisher (or an admin) replaces or deletes individual records of a
// dataset by key, outside any pipeline. Each call is one new row version: upserts write the
// records, deletes write tombstones, so readers (FINAL, live rows only) see the change at once and
// incremental deliveries, which follow `_version`, carry it. Then the dataset's version moves and
// `dataset.updated` is published.
import type { CatalogService } from "../catalog/catalog.service.js";
import { canonicalKey } from "../catalog/columns.js";
import { LIVE, liveRows } from "../catalog/dataset-table.js";
import type { ClickHouse } from "../db/clickhouse.js";
import { join, sql } from "../db/sql.js";
import { uuidv7 } from "../db/uuid.js";
import { AppError, badInput, notFound } from "../errors.js";
import { newEvent, type DatasetUpdated, type EventBus } from "../events/events.js";
import type { Dataset, PrismaClient } from "../generated/prisma/client.js";
import type { Caller } from "../identity/caller.js";
import { ref } from "../records/read.service.js";
import { nextRowVersion, writeRecords } from "../records/records.writer.js";
import { checkKeys, checkRecords, keyFromText } from "./record-input.js";

/** Records (or keys) one correction call takes at most. */
export const MAX_CORRECTION_RECORDS = 1000;

export interface CorrectionResult {
  /** The dataset after the change (version, rowCount, lastUpdatedAt). */
  dataset: Dataset;
  /** Records written, or deleted (keys that were live; absent keys change nothing). */
  changedRows: number;
}

export class CorrectionService {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly clickhouse: ClickHouse,
    private readonly database: string,
    private readonly catalog: Pick<CatalogService, "own">,
    private readonly events: EventBus,
  ) {}

  /** Writes whole records, replacing any with the same key. All or nothing: one bad value refuses the call. */
  async upsert(caller: Caller, datasetId: string, records: readonly unknown[]): Promise<CorrectionResult> {
    const dataset = await this.writable(caller, datasetId);
    batchSize(records, "records");
    const rows = checkRecords(ref(dataset), records);
    await this.write(dataset, rows, false);
    return this.committed(dataset, rows.length);
  }

  /** Deletes the records with these keys; keys with no live record are ignored. */
  async delete(caller: Caller, datasetId: string, keys: readonly unknown[]): Promise<CorrectionResult> {
    const dataset = await this.writable(caller, datasetId);
    batchSize(keys, "keys");
    const rows = await this.liveOnly(dataset, checkKeys(ref(dataset), keys));
    if (rows.length === 0) return { dataset, changedRows: 0 };
    await this.write(dataset, rows, true);
    return this.committed(dataset, rows.length);
  }

  /**
   * REST `PUT …/records/{key}`: the record under its canonical key. Key columns may be left out
   * of the body; given, they must match the path.
   */
  async putByKey(caller: Caller, slug: string, keyText: string, values: unknown): Promise<CorrectionResult> {
    const dataset = await this.writable(caller, await this.idBySlug(slug));
    const key = keyFromText(ref(dataset), keyText);
    if (typeof values !== "object" || values === null || Array.isArray(values)) {
      throw badInput("The body must be the record as a JSON object", { argument: "body" });
    }
    const record = { ...key, ...values };
    if (
      canonicalKey(dataset.keyColumns, checkRecords(ref(dataset), [record])[0]!) !==
      canonicalKey(dataset.keyColumns, key)
    ) {
      throw badInput("The key columns in the body differ from the key in the path", { argument: "body" });
    }
    return this.upsert(caller, dataset.id, [record]);
  }

  /** REST `DELETE …/records/{key}`: NOT_FOUND when no live record has the key. */
  async deleteByKey(caller: Caller, slug: string, keyText: string): Promise<CorrectionResult> {
    const dataset = await this.writable(caller, await this.idBySlug(slug));
    const result = await this.delete(caller, dataset.id, [keyFromText(ref(dataset), keyText)]);
    if (result.changedRows === 0) throw notFound("Record");
    return result;
  }

  private async idBySlug(slug: string): Promise<string> {
    const row = await this.prisma.dataset.findUnique({ where: { slug }, select: { id: true } });
    if (!row) throw notFound("Dataset");
    return row.id;
  }

  private async writable(caller: Caller, datasetId: string): Promise<Dataset> {
    const dataset = await this.catalog.own(caller, datasetId);
    if (dataset.status === "ARCHIVED") throw new AppError("CONFLICT", "Archived datasets cannot change");
    return dataset;
  }

  private async liveOnly(dataset: Dataset, keys: Record<string, unknown>[]) {
    const byKey = new Map(keys.map((k) => [canonicalKey(dataset.keyColumns, k), k]));
    const found = await this.clickhouse.query<{ _key: string }>(sql`
      SELECT _key FROM ${liveRows(this.database, dataset.tableName)}
      WHERE ${LIVE} AND _key IN (${join([...byKey.keys()].map((k) => sql`${k}`))})`);
    return found.map((row) => byKey.get(row._key)!);
  }

  private async write(dataset: Dataset, rows: Record<string, unknown>[], deleted: boolean) {
    // Corrections have no pipeline run; the id still tells these rows apart in the table.
    const runId = `correction:${uuidv7()}`;
    await writeRecords(this.clickhouse, this.database, ref(dataset), rows, {
      version: nextRowVersion(),
      runId,
      deleted,
    });
  }

  /** Moves the dataset's version, recounts its live rows and tells listeners. */
  private async committed(dataset: Dataset, changedRows: number): Promise<CorrectionResult> {
    const [counted] = await this.clickhouse.query<{ n: string }>(
      sql`SELECT count() AS n FROM ${liveRows(this.database, dataset.tableName)} WHERE ${LIVE}`,
    );
    const updated = await this.prisma.dataset.update({
      where: { id: dataset.id },
      data: { version: { increment: 1 }, rowCount: BigInt(counted?.n ?? 0), lastUpdatedAt: new Date() },
    });
    await this.events.publish(
      newEvent<DatasetUpdated>("dataset.updated", {
        datasetId: updated.id,
        accountId: updated.accountId,
        version: updated.version,
        rowCount: Number(updated.rowCount),
        changedRows,
        cause: "CORRECTION",
        runId: null,
      }),
    );
    return { dataset: updated, changedRows };
  }
}

function batchSize(items: readonly unknown[], argument: string): void {
  if (items.length === 0) throw badInput(`Give at least one item in ${argument}`, { argument });
  if (items.length > MAX_CORRECTION_RECORDS) {
    throw badInput(`At most ${MAX_CORRECTION_RECORDS} ${argument} per call`, {
      argument,
      max: MAX_CORRECTION_RECORDS,
    });
  }
}
