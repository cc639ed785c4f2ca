// The settings of a STREAM source: which broker, where it is, what to consume, and how messages
// are gathered into micro-batches. Passwords and SASL secrets never sit here: they go in the
// source's secrets (encrypted at rest, never returned), under the names listed per broker.
import { z } from "zod";
import { AppError } from "../errors.js";

const count = (min: number, max: number) => z.int().min(min).max(max);
const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** How messages become batches; every broker shares it. */
const batching = {
  /** Messages written (and then acknowledged) together. @default 1000 */
  batchSize: count(1, 50_000).default(1000),
  /** The longest a message waits for its batch to fill. @default 200 */
  batchMs: count(10, 60_000).default(200),
  /**
   * A field the broker's message id is stored in (Kafka topic:partition:offset, NATS stream
   * sequence, RabbitMQ message-id property; MQTT has none), so the dataset can key on it and a
   * re-delivered message replaces itself. Unset: the message is stored as it is.
   */
  messageIdField: z.string().regex(FIELD, "must be a plain field name").optional(),
};

const kafka = z.strictObject({
  broker: z.literal("kafka"),
  /** host:port of one or more brokers. */
  brokers: z.array(z.string().min(3).max(300)).min(1).max(20),
  topics: z.array(z.string().min(1).max(249)).min(1).max(50),
  /** The consumer group: offsets are committed for it, after each batch is written. */
  groupId: z.string().min(1).max(255),
  /** Start at the earliest offset when the group has none. @default true */
  fromBeginning: z.boolean().default(true),
  /** TLS to the brokers. @default false */
  ssl: z.boolean().default(false),
  /** SASL login; the password goes in secrets.saslPassword. */
  sasl: z
    .strictObject({
      mechanism: z.enum(["plain", "scram-sha-256", "scram-sha-512"]),
      username: z.string().min(1).max(255),
    })
    .optional(),
  ...batching,
});

const nats = z.strictObject({
  broker: z.literal("nats"),
  /** nats://host:port, one or more. */
  servers: z.array(z.string().min(3).max(300)).min(1).max(20),
  /** The JetStream stream to read. */
  stream: z.string().min(1).max(255),
  /** The durable consumer (created when missing, explicit acks): it keeps the position. */
  durable: z
    .string()
    .regex(/^[A-Za-z0-9_-]+$/, "letters, digits, _ and - only")
    .max(255),
  filterSubject: z.string().min(1).max(255).optional(),
  /** Login user; the password goes in secrets.password (or a token in secrets.token). */
  user: z.string().min(1).max(255).optional(),
  /** How long a delivered message may stay unacknowledged before the server re-delivers it. @default 30 */
  ackWaitSeconds: count(1, 3600).default(30),
  ...batching,
});

const rabbitmq = z.strictObject({
  broker: z.literal("rabbitmq"),
  /** amqp://user@host:port/vhost or amqps://…, without a password (secrets.password). */
  url: z.string().regex(/^amqps?:\/\//, "must be an amqp:// or amqps:// URL"),
  queue: z.string().min(1).max(255),
  /** Declare the queue (durable) when it does not exist. @default true */
  declare: z.boolean().default(true),
  ...batching,
});

const mqtt = z.strictObject({
  broker: z.literal("mqtt"),
  /** mqtt://host:port or mqtts://…, without a password (secrets.password). */
  url: z.string().regex(/^mqtts?:\/\//, "must be an mqtt:// or mqtts:// URL"),
  /** Topic filters, subscribed at QoS 1. */
  topics: z.array(z.string().min(1).max(65_535)).min(1).max(50),
  /** The persistent session's client id: messages wait in it while the consumer is away. */
  clientId: z.string().min(1).max(128),
  username: z.string().min(1).max(255).optional(),
  /** How long the broker keeps the session while no consumer is connected. @default 86400 */
  sessionExpirySeconds: count(60, 4_294_967_295).default(86_400),
  ...batching,
});

export const streamSourceConfigSchema = z
  .discriminatedUnion("broker", [kafka, nats, rabbitmq, mqtt])
  .superRefine((config, ctx) => {
    if (config.broker === "rabbitmq" || config.broker === "mqtt") {
      const url = URL.canParse(config.url) ? new URL(config.url) : null;
      if (!url) ctx.addIssue({ code: "custom", path: ["url"], message: "is not a URL" });
      else if (url.password) {
        ctx.addIssue({
          code: "custom",
          path: ["url"],
          message: "must not carry the password; put it in secrets.password",
        });
      }
    }
  });

export type StreamSourceConfig = z.output<typeof streamSourceConfigSchema>;
export type StreamBroker = StreamSourceConfig["broker"];
export type BrokerConfig<B extends StreamBroker> = Extract<StreamSourceConfig, { broker: B }>;

/** The secrets each broker reads; any other name is refused so a typo does not go unnoticed. */
export const STREAM_SECRETS: Record<StreamBroker, readonly string[]> = {
  kafka: ["saslPassword"],
  nats: ["password", "token"],
  rabbitmq: ["password"],
  mqtt: ["password"],
};

export function streamConfigProblems(config: unknown, secrets: Record<string, string>): string[] {
  const result = streamSourceConfigSchema.safeParse(config);
  if (!result.success) return result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  const allowed = STREAM_SECRETS[result.data.broker];
  return Object.keys(secrets)
    .filter((name) => !allowed.includes(name))
    .map((name) => `secrets.${name}: ${result.data.broker} sources read only ${allowed.join(", ")}`);
}

export function parseStreamConfig(input: unknown): StreamSourceConfig {
  const result = streamSourceConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
  throw new AppError("BAD_USER_INPUT", `Invalid stream source: ${problems.join("; ")}`, { problems });
}
