import type { ApolloServerPlugin } from "@apollo/server";
import type { Metrics } from "../observability/metrics.js";
import type { Context } from "./context.js";

// Operation names are chosen by clients; past this many distinct names new ones are counted as
// "other", so a client cannot grow the metrics without bound.
const MAX_OPERATION_LABELS = 500;

export function metricsPlugin(metrics: Metrics): ApolloServerPlugin<Context> {
  const seen = new Set<string>();
  const label = (name: string | null | undefined): string => {
    if (!name || !/^[A-Za-z_][A-Za-z0-9_]{0,99}$/.test(name)) return "anonymous";
    if (seen.has(name)) return name;
    if (seen.size >= MAX_OPERATION_LABELS) return "other";
    seen.add(name);
    return name;
  };
  return {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse({ operationName, operation }) {
          const labels = { operation: label(operationName), type: operation?.operation ?? "unknown" };
          metrics.graphqlRequests.inc(labels);
          metrics.graphqlDuration.observe(labels, (performance.now() - started) / 1000);
        },
      };
    },
  };
}
