// The outbound guard against IANA's special-purpose address registries (both families), typed
// into test/fixtures from the registries' published lists: every block in them is in the guard's
// table, and an address at each end of every block is refused, through the real API, when a
// publisher points an HTTP source at it. Nothing is contacted: creation refuses.
import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SPECIAL_IPV4, SPECIAL_IPV6, addressBytes, classifyAddress } from "../../src/net/outbound.js";
import { CreateSourceDocument } from "../generated/graphql.js";
import { startStack, type TestAccount, type TestStack } from "../support/stack.js";

function registry(file: string): { cidr: string; name: string }[] {
  const lines = readFileSync(new URL(`../fixtures/${file}`, import.meta.url), "utf8")
    .trim()
    .split("\n");
  return lines.slice(1).map((line) => {
    const [cidr = "", name = ""] = line.split(",");
    return { cidr, name: name.replace(/"/g, "") };
  });
}

const IPV4_REGISTRY = registry("iana-ipv4-special-registry.csv");
const IPV6_REGISTRY = registry("iana-ipv6-special-registry.csv");

/** The first and last address of a block, as text. */
function ends(cidr: string): [string, string] {
  const [address = "", bits = ""] = cidr.split("/");
  const bytes = addressBytes(address)!;
  const prefix = Number(bits);
  const last = Uint8Array.from(bytes);
  for (let bit = prefix; bit < bytes.length * 8; bit++) last[bit >> 3]! |= 0x80 >> (bit % 8);
  const text = (b: Uint8Array) =>
    b.length === 4
      ? [...b].join(".")
      : Array.from({ length: 8 }, (_, i) => ((b[i * 2]! << 8) | b[i * 2 + 1]!).toString(16)).join(":");
  return [text(bytes), text(last)];
}

describe("the guard's table", () => {
  it("holds every block of both IANA registries", () => {
    expect(IPV4_REGISTRY.length).toBe(25);
    expect(IPV6_REGISTRY.length).toBe(25);
    const v4 = new Set(SPECIAL_IPV4.map((r) => r.cidr));
    const v6 = new Set(SPECIAL_IPV6.map((r) => r.cidr));
    expect(IPV4_REGISTRY.filter((r) => !v4.has(r.cidr))).toEqual([]);
    expect(IPV6_REGISTRY.filter((r) => !v6.has(r.cidr))).toEqual([]);
  });

  it.each([...IPV4_REGISTRY, ...IPV6_REGISTRY].map((r) => [r.cidr, r.name]))(
    "classifies both ends of %s (%s) as not public",
    (cidr) => {
      for (const address of ends(cidr)) expect(classifyAddress(address), address).not.toBe("public");
    },
  );

  it("judges translation forms by the IPv4 inside, and refuses those it cannot see into", () => {
    expect(classifyAddress("::ffff:8.8.8.8")).toBe("public");
    expect(classifyAddress("64:ff9b::8.8.8.8")).toBe("public");
    expect(classifyAddress("64:ff9b::127.0.0.1")).toBe("loopback");
    expect(classifyAddress("2002:808:808::1")).toBe("public");
    expect(classifyAddress("64:ff9b:1::808:808")).not.toBe("public");
    expect(classifyAddress("::ffff:0:808:808")).not.toBe("public");
    expect(classifyAddress("2001:0:4136:e378:8000:63bf:3fff:fdd2")).not.toBe("public");
    expect(classifyAddress("2606:4700:4700::1111")).toBe("public");
  });
});

describe("sources pointed at special-purpose addresses", () => {
  let stack: TestStack;
  let publisher: TestAccount;

  beforeAll(async () => {
    stack = await startStack({ OUTBOUND_ALLOW_CIDRS: "", OUTBOUND_ALLOW_PRIVATE: "false" });
    publisher = await stack.signup("Registry publisher", "PUBLISHER");
  }, 60_000);

  afterAll(async () => {
    await stack?.close();
  });

  it("are refused at creation for every block, the three that once passed included", async () => {
    const addresses = [
      "64:ff9b:1::a00:1",
      "::ffff:0:7f00:1",
      "2001:0:4136:e378:8000:63bf:3fff:fdd2",
      ...[...IPV4_REGISTRY, ...IPV6_REGISTRY].flatMap((r) => ends(r.cidr)),
    ];
    const accepted: string[] = [];
    for (const [i, address] of addresses.entries()) {
      // A fresh publisher every 50 creations keeps under the plan's rate limit.
      if (i > 0 && i % 50 === 0) publisher = await stack.signup("Registry publisher", "PUBLISHER");
      const host = address.includes(":") ? `[${address}]` : address;
      const res = await stack.graphql(
        CreateSourceDocument,
        {
          input: {
            type: "HTTP",
            name: `at ${address}`,
            config: { url: `http://${host}/items` },
            secrets: {},
          },
        },
        publisher.headers,
      );
      if (res.errors?.[0]?.extensions?.code !== "BAD_USER_INPUT")
        accepted.push(`${address}: ${JSON.stringify(res.errors ?? res.data)}`);
      else expect(res.errors[0]!.message).toMatch(/not a public address/);
    }
    expect(accepted).toEqual([]);
  });
});
