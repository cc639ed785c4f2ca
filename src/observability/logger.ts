import { pino, type DestinationStream, type Logger } from "pino";
import type { Config } from "../config.js";

export type { Logger };

/**
 * JSON logs. Secrets are redacted by path as a second line of defence; the first is never
 * passing them to a logger at all.
 */
export function createLogger(config: Pick<Config, "LOG_LEVEL">, destination?: DestinationStream): Logger {
  const options = {
    level: config.LOG_LEVEL,
    base: { service: "datahus" },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: [
        "req.headers.authorization",
        "req.headers['x-api-key']",
        "req.headers.cookie",
        "*.password",
        "*.secret",
        "*.apiKey",
        "*.token",
      ],
      censor: "[redacted]",
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
