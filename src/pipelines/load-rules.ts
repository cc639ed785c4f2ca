// What a load does with keys and how much a full refresh may shrink a dataset: the rules behind a
// pipeline's duplicateKeys, allowEmptyKeys, rowKeyColumn and minLiveRowRatio settings (README
// "Keys, duplicates and full refreshes"). Pure; the runner applies the decisions.
import type { Column } from "../catalog/columns.js";
import type { DuplicateKeyPolicy } from "../generated/prisma/client.js";

export interface LoadSettings {
  duplicateKeys: DuplicateKeyPolicy;
  allowEmptyKeys: boolean;
  rowKeyColumn: string | null;
  minLiveRowRatio: number;
}

export const DEFAULT_LOAD_SETTINGS: LoadSettings = {
  duplicateKeys: "LAST_WINS",
  allowEmptyKeys: false,
  rowKeyColumn: null,
  minLiveRowRatio: 0.5,
};

/** Every problem with the settings against the dataset's schema, as "field: message". */
export function loadSettingsProblems(
  settings: LoadSettings,
  dataset: { columns: readonly Column[]; keyColumns: readonly string[] },
): string[] {
  const problems: string[] = [];
  const ratio = settings.minLiveRowRatio;
  if (!(Number.isFinite(ratio) && ratio >= 0 && ratio <= 1))
    problems.push("minLiveRowRatio: must be from 0 (no check) to 1");
  const name = settings.rowKeyColumn;
  if (name !== null) {
    const column = dataset.columns.find((c) => c.name === name);
    if (!column || column.type !== "STRING" || !dataset.keyColumns.includes(name)) {
      problems.push(`rowKeyColumn: "${name}" must be one of the dataset's key columns, of type STRING`);
    }
  }
  return problems;
}

/**
 * The generated key of a source row: where it came from (file and row number), so a retried run
 * makes the same keys. An INCREMENTAL run adds its own id, so each run appends its rows.
 */
export function generatedRowKey(
  mode: "FULL_REFRESH" | "INCREMENTAL",
  runId: string,
  origin: string,
  rowNumber: number,
): string {
  const position = origin ? `${origin}:${rowNumber}` : String(rowNumber);
  return mode === "INCREMENTAL" ? `${runId}/${position}` : position;
}

/** The reason a row's key is refused, or null: an empty text key, unless the settings allow it. */
export function emptyKeyReason(
  settings: Pick<LoadSettings, "allowEmptyKeys">,
  keyColumns: readonly string[],
  row: Record<string, unknown>,
): string | null {
  if (settings.allowEmptyKeys) return null;
  const empty = keyColumns.filter((k) => row[k] === "");
  if (!empty.length) return null;
  return `key column${empty.length > 1 ? "s" : ""} ${empty.map((k) => `"${k}"`).join(", ")} empty (the pipeline does not allow empty keys)`;
}

/** What happens to a row whose key an earlier row of the load had. */
export type KeyDecision =
  /** Loaded; no earlier row had its key. */
  | { kind: "new" }
  /** Loaded; it replaces an earlier row (LAST_WINS), which now counts as a duplicate. */
  | { kind: "replaces"; firstRow: number }
  /** Not loaded (FIRST_WINS): a duplicate. */
  | { kind: "skip"; firstRow: number }
  /** Quarantined with the reason (QUARANTINE). */
  | { kind: "quarantine"; reason: string };

/**
 * The keys seen in one load, with the row number of the first row that had each. Holds every key
 * of the load in memory: about 100 bytes a key beyond the key's own text.
 */
export class KeyTracker {
  private readonly seen = new Map<string, number>();

  constructor(private readonly policy: DuplicateKeyPolicy) {}

  decide(key: string, rowNumber: number): KeyDecision {
    const first = this.seen.get(key);
    if (first === undefined) {
      this.seen.set(key, rowNumber);
      return { kind: "new" };
    }
    switch (this.policy) {
      case "LAST_WINS":
        return { kind: "replaces", firstRow: first };
      case "FIRST_WINS":
        return { kind: "skip", firstRow: first };
      case "QUARANTINE":
        return {
          kind: "quarantine",
          reason: `duplicate key ${JSON.stringify(key)}: row ${first} of this load has it (duplicate-key policy QUARANTINE)`,
        };
    }
  }
}

/**
 * Why a FULL_REFRESH must not replace the dataset, or null when it may. It fails when rows were
 * read and none is left to publish (every one rejected, filtered or a duplicate), and when the new
 * table would hold fewer rows than `minLiveRowRatio` of the live one. A ratio of 0 turns both off.
 */
export function fullRefreshRefusal(
  minLiveRowRatio: number,
  counts: { rowsRead: number; newRows: number; liveRows: number },
): string | null {
  if (minLiveRowRatio <= 0) return null;
  const { rowsRead, newRows, liveRows } = counts;
  if (rowsRead > 0 && newRows === 0) {
    return `The full refresh left no row to publish: all ${rowsRead} rows read were rejected, filtered or duplicates; the dataset is unchanged`;
  }
  if (newRows < liveRows * minLiveRowRatio) {
    return `The full refresh would replace ${liveRows} live rows with ${newRows}, fewer than the pipeline's minimum of ${minLiveRowRatio * 100}% (minLiveRowRatio ${minLiveRowRatio}); the dataset is unchanged`;
  }
  return null;
}
