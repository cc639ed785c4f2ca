// The adapter for each broker: the one place that knows which broker module serves which config.
// Each adapter imports its client library when it starts, so a worker loads only the brokers it
// consumes (issue 13: the four together held ~5 MiB in every worker).
import type { StreamSourceConfig } from "../stream.config.js";
import type { StreamAdapter } from "./adapter.js";
import { kafkaAdapter } from "./kafka.adapter.js";
import { mqttAdapter } from "./mqtt.adapter.js";
import { natsAdapter } from "./nats.adapter.js";
import { rabbitmqAdapter } from "./rabbitmq.adapter.js";

/** `capacity`: messages the engine buffers; push brokers are held to as many unacknowledged. */
export function adapterFor(
  config: StreamSourceConfig,
  secrets: Record<string, string>,
  capacity: number,
): StreamAdapter {
  switch (config.broker) {
    case "kafka":
      return kafkaAdapter(config, secrets);
    case "nats":
      return natsAdapter(config, secrets, capacity);
    case "rabbitmq":
      return rabbitmqAdapter(config, secrets, capacity);
    case "mqtt":
      return mqttAdapter(config, secrets);
  }
}
