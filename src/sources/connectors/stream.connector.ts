// STREAM sources: a broker consumed continuously by a worker (src/streams), not read by runs.
// The connector checks the settings and, as a connection test, connects and reports what the
// broker says is waiting, plus what arrives within a moment (not acknowledged: the broker
// delivers those again to the pipeline).
import { badInput } from "../../errors.js";
import { MessageBuffer } from "../../streams/adapters/adapter.js";
import { adapterFor } from "../../streams/adapters/registry.js";
import { parseStreamConfig, streamConfigProblems } from "../../streams/stream.config.js";
import type { Connector } from "./types.js";

/** How long a connection test waits for messages. */
const SAMPLE_WAIT_MS = 1000;

export const streamConnector: Connector = {
  validate: (config, secrets) => streamConfigProblems(config, secrets),

  read() {
    throw badInput(
      "STREAM pipelines are not run: start the pipeline (startPipeline) and a worker consumes it",
    );
  },

  async sample(context, max) {
    const config = parseStreamConfig(context.config);
    // A test must not take over the pipeline's MQTT session.
    const probe =
      config.broker === "mqtt"
        ? { ...config, clientId: `${config.clientId}-test`, sessionExpirySeconds: 60 }
        : config;
    const buffer = new MessageBuffer(max);
    const adapter = adapterFor(probe, context.secrets, max);
    try {
      await adapter.start(buffer);
      const messages = await Promise.race([
        buffer.take(max, 0),
        new Promise<[]>((resolve) => setTimeout(() => resolve([]), SAMPLE_WAIT_MS)),
      ]);
      const waiting = await adapter.lag().catch(() => null);
      const records = messages.flatMap((m) => {
        try {
          const value = JSON.parse(Buffer.from(m.body).toString("utf8")) as unknown;
          return typeof value === "object" && value !== null && !Array.isArray(value)
            ? [value as Record<string, unknown>]
            : [];
        } catch {
          return [];
        }
      });
      const lag = waiting === null ? "" : `, ${waiting} message(s) waiting`;
      return { message: `Connected to ${config.broker}${lag}`, records };
    } catch (error) {
      throw badInput(`Could not consume from ${config.broker}: ${(error as Error).message}`);
    } finally {
      buffer.close();
      await adapter.close();
    }
  },
};
