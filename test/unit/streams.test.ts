import { describe, expect, it } from "vitest";
import { MessageBuffer, type StreamMessage } from "../../src/streams/adapters/adapter.js";
import { parseStreamConfig, streamConfigProblems } from "../../src/streams/stream.config.js";

const message = (n: number): StreamMessage => ({
  id: String(n),
  origin: "t",
  body: Buffer.from("{}"),
  handle: n,
});

describe("stream source settings", () => {
  it("fills in the batching defaults per broker", () => {
    const config = parseStreamConfig({ broker: "rabbitmq", url: "amqp://u@h:5672/v", queue: "q" });
    expect(config).toMatchObject({ batchSize: 1000, batchMs: 200, declare: true });
  });

  it("lists every problem, refusing a password in a URL and secrets the broker does not read", () => {
    expect(
      streamConfigProblems({ broker: "mqtt", url: "mqtt://u:hunter22@h", topics: [], clientId: "c" }, {}),
    ).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^topics:/),
        "url: must not carry the password; put it in secrets.password",
      ]),
    );
    const nats = { broker: "nats", servers: ["nats://h:4222"], stream: "S", durable: "d" };
    expect(streamConfigProblems(nats, { saslPassword: "x" })).toEqual([
      "secrets.saslPassword: nats sources read only password, token",
    ]);
    expect(streamConfigProblems({ broker: "kinesis" }, {})[0]).toMatch(/^broker:/);
    expect(() => parseStreamConfig({ broker: "kafka", brokers: [], topics: ["a"], groupId: "g" })).toThrow(
      /brokers/,
    );
  });
});

describe("the message buffer between an adapter and the engine", () => {
  it("gives a full batch as soon as it is there, and a partial one after the wait", async () => {
    const buffer = new MessageBuffer(10);
    for (let i = 0; i < 4; i++) void buffer.push(message(i));
    expect((await buffer.take(3, 60_000)).map((m) => m.id)).toEqual(["0", "1", "2"]);
    const partial = buffer.take(3, 20);
    expect((await partial).map((m) => m.id)).toEqual(["3"]);
  });

  it("holds the adapter back while it is full, and lets it go once taken from", async () => {
    const buffer = new MessageBuffer(2);
    let released = false;
    void buffer.push(message(1));
    void buffer.push(message(2)).then(() => (released = true));
    await new Promise((r) => setTimeout(r, 10));
    expect(released).toBe(false);
    await buffer.take(1, 0);
    await new Promise((r) => setTimeout(r, 0));
    expect(released).toBe(true);
  });

  it("ends a waiting take when closed, and surfaces an adapter's failure", async () => {
    const buffer = new MessageBuffer(2);
    const waiting = buffer.take(5, 1000);
    buffer.close();
    expect(await waiting).toEqual([]);
    const failing = new MessageBuffer(2);
    const taking = failing.take(5, 1000);
    failing.fail(new Error("connection lost"));
    await expect(taking).rejects.toThrow("connection lost");
  });
});
