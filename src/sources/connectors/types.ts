// What every source connector shares with the pipeline runner.

/** The slice of a pino logger a connector uses; tests pass a recorder. Never pass secrets to it. */
export interface ConnectorLog {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
}

/** Where an incremental sync resumes: the largest cursor value the previous sync saw. */
export type Checkpoint = string | number;
