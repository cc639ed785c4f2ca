// What every source connector shares with the pipeline runner.

/** The slice of a pino logger a connector uses; tests pass a recorder. Never pass secrets to it. */
export interface ConnectorLog {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Where an incremental sync resumes: the largest cursor value the previous sync saw. */
export type Checkpoint = string | number;

/**
 * One record a connector read, or one it could not read (quarantined with its reasons; the run
 * goes on). `origin` names where it came from when a source has several parts (a file name, an
 * S3 key), so a quarantined row can be traced. Row numbers count within the origin, from 1.
 */
export type SourceRow =
  | {
      ok: true;
      rowNumber: number;
      record: Record<string, unknown>;
      bytes?: number;
      origin?: string;
      /** The share of the source's rows read so far, when known (see ParsedRow). */
      progress?: number;
    }
  | { ok: false; rowNumber: number; raw: string; reasons: string[]; origin?: string };

/** Everything a connector is given for one sync. */
export interface ConnectorContext {
  sourceId: string;
  /** The pipeline run reading (PUSH reads the batch stored for it). */
  runId: string;
  /** The source's stored, non-secret settings (validated by the connector's `validate`). */
  config: Record<string, unknown>;
  /** The source's decrypted secrets. Never log them or put them in an error message. */
  secrets: Record<string, string>;
  /**
   * What the pipeline's last successful run left (`SourceReader.checkpoint()`), or null for the
   * first run. Connector-specific JSON: files seen, ETags, a cursor value.
   */
  checkpoint: unknown;
  /** INCREMENTAL reads only what is new since `checkpoint`; FULL_REFRESH reads everything. */
  mode: "FULL_REFRESH" | "INCREMENTAL";
  log: ConnectorLog;
  /** Aborted when the run is cancelled or the worker stops: stop reading and release sockets. */
  signal: AbortSignal;
}

/** One sync's reading. Iterate it once; a thrown error fails the run (retried by pg-boss). */
export interface SourceReader extends AsyncIterable<SourceRow> {
  /**
   * Valid once iteration has completed: what the next INCREMENTAL run needs. The runner stores it
   * only when the run succeeds, so a failed or killed run is re-read from the old checkpoint.
   */
  checkpoint(): unknown;
  /** Total bytes to read, when known up front (for progress); null otherwise. */
  totalBytes?(): Promise<number | null>;
}

/** A local CSV file a sync reads, as {@link Connector.localCsv} finds it. */
export interface LocalCsv {
  /** Absolute, links resolved, inside the directory the operator allows. */
  path: string;
  /** The name quarantined rows name as their origin. */
  origin: string;
  size: number;
  delimiter: string;
  header: boolean;
  /** What the pipeline keeps for its next INCREMENTAL sync, as `SourceReader.checkpoint()`. */
  checkpoint: unknown;
}

export interface ConnectionSample {
  message: string;
  records: Record<string, unknown>[];
}

/** A kind of source. One per SourceType, listed in connectors/registry.ts. */
export interface Connector {
  /**
   * Every problem with the settings, as "field: message" strings (empty when fine). Names
   * fields, never secret values.
   */
  validate(config: Record<string, unknown>, secrets: Record<string, string>): string[];
  /**
   * Refuses (BAD_USER_INPUT) a server the operator's outbound policy does not allow, resolving its
   * name. Connectors built with a policy have it; reads check again when they connect.
   */
  checkTargets?(config: Record<string, unknown>): Promise<void>;
  read(context: ConnectorContext): SourceReader;
  /**
   * The CSV file this sync would read, when it is a local file ClickHouse can be given to parse
   * itself (pipelines/engine/engine-load.ts); null when it is not, or when an INCREMENTAL sync
   * has nothing new to read. Connectors without local CSV files leave it out.
   */
  localCsv?(context: ConnectorContext): Promise<LocalCsv | null>;
  /** Reads a handful of records to prove the settings work; throws AppError with a clear message. */
  sample(
    context: Omit<ConnectorContext, "checkpoint" | "mode" | "runId">,
    max: number,
  ): Promise<ConnectionSample>;
}
