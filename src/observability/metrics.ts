import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

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

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "datahus_" });
  }
}
