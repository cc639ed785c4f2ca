// What a worker consuming a STREAM source tells the rest of the platform: saved on the source
// (Source.state.stream) once a second, read by Source.metrics and /metrics.

export const STREAM_STATE_KEY = "stream";

export interface StreamState {
  /** A worker is consuming (false once the pipeline stopped). */
  consuming: boolean;
  /** Writes to ClickHouse fail: consumption waits, nothing is acknowledged or dropped. */
  paused: boolean;
  /** Messages not yet stored: waiting at the broker plus taken and unacknowledged; null if unknown. */
  lag: number | null;
  /** Messages stored per second, over the last few seconds. */
  messagesPerSecond: number;
  /** ISO time the last message was taken, null before the first. */
  lastMessageAt: string | null;
  /** ISO time of this report: a report older than a few seconds means no worker reports. */
  updatedAt: string;
  pipelineId: string;
}

export function streamStateOf(state: unknown): StreamState | null {
  if (typeof state !== "object" || state === null) return null;
  const value = (state as Record<string, unknown>)[STREAM_STATE_KEY];
  return typeof value === "object" && value !== null ? (value as StreamState) : null;
}
