import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { StreamState } from "../streams/stream.state.js";

/** Each STREAM source's last report (Source.state), read when /metrics is scraped. */
export type StreamStates = () => Promise<{ sourceId: string; state: StreamState }[]>;

/** One registry per app instance, so several instances (tests) never share counters. */
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequests = new Counter({
    name: "datahus_http_requests_total",
    help: "HTTP requests by route and status code",
    labelNames: ["method", "route", "status"] as const,
    registers: [this.registry],
  });

  readonly graphqlRequests = new Counter({
    name: "datahus_graphql_operations_total",
    help: "GraphQL operations by operation name and type",
    labelNames: ["operation", "type"] as const,
    registers: [this.registry],
  });

  readonly graphqlDuration = new Histogram({
    name: "datahus_graphql_operation_duration_seconds",
    help: "GraphQL operation duration by operation name",
    labelNames: ["operation", "type"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly graphqlErrors = new Counter({
    name: "datahus_graphql_errors_total",
    help: "GraphQL errors returned to clients, by error code",
    labelNames: ["code"] as const,
    registers: [this.registry],
  });

  readonly shedRequests = new Counter({
    name: "datahus_http_shed_requests_total",
    help: "Requests refused with 503 by load shedding, by the bound that refused them",
    labelNames: ["reason"] as const,
    registers: [this.registry],
  });

  readonly requestsInFlight = new Gauge({
    name: "datahus_http_requests_in_flight",
    help: "HTTP requests being handled by this process (LOAD_MAX_IN_FLIGHT bounds it)",
    registers: [this.registry],
  });

  readonly liveConnections = new Gauge({
    name: "datahus_live_connections",
    help: "Authenticated WebSocket (graphql-ws) connections open on this process",
    registers: [this.registry],
  });

  readonly liveSubscriptions = new Gauge({
    name: "datahus_live_subscriptions",
    help: "Live subscriptions listening on this process",
    registers: [this.registry],
  });

  constructor(streams?: StreamStates) {
    collectDefaultMetrics({ register: this.registry, prefix: "datahus_" });
    if (streams) this.streamGauges(streams);
  }

  /** Lag, throughput and last-message time per STREAM source, as its worker last reported. */
  private streamGauges(read: StreamStates): void {
    let reading: Promise<{ sourceId: string; state: StreamState }[]> | null = null;
    // The three gauges are collected one after the other: one query serves a scrape.
    const states = () => {
      reading ??= read().finally(() => setTimeout(() => (reading = null), 100));
      return reading;
    };
    const gauge = (name: string, help: string, value: (s: StreamState) => number | null) =>
      new Gauge({
        name,
        help,
        labelNames: ["source"] as const,
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const { sourceId, state } of await states().catch(() => [])) {
            const v = value(state);
            if (v !== null) this.set({ source: sourceId }, v);
          }
        },
      });
    gauge("datahus_stream_lag_messages", "Messages of a STREAM source not yet in its dataset", (s) => s.lag);
    gauge("datahus_stream_messages_per_second", "Messages a STREAM source stored per second", (s) =>
      s.consuming ? s.messagesPerSecond : 0,
    );
    gauge(
      "datahus_stream_last_message_timestamp_seconds",
      "When a STREAM source's last message was taken (Unix seconds)",
      (s) => (s.lastMessageAt ? Date.parse(s.lastMessageAt) / 1000 : null),
    );
    gauge("datahus_stream_paused", "1 while a STREAM source waits for ClickHouse to take its batch", (s) =>
      s.paused ? 1 : 0,
    );
  }
}
