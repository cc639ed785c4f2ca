import { describe, expect, it } from "vitest";
import {
  addressBytes,
  checkTarget,
  classifyAddress,
  isAllowedAddress,
  type OutboundPolicy,
} from "../../src/net/outbound.js";

const strict: OutboundPolicy = { allowPrivate: false, allowCidrs: [] };

describe("classifyAddress", () => {
  it.each([
    ["8.8.8.8", "public"],
    ["93.184.215.14", "public"],
    ["0.0.0.0", "unspecified"],
    ["10.1.2.3", "private"],
    ["100.64.0.1", "private"],
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["169.254.169.254", "link-local"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.32.0.1", "public"],
    ["192.168.1.1", "private"],
    ["192.0.2.1", "reserved"],
    ["198.18.0.1", "reserved"],
    ["224.0.0.1", "multicast"],
    ["239.255.255.250", "multicast"],
    ["240.0.0.1", "reserved"],
    ["255.255.255.255", "reserved"],
  ] as const)("IPv4 %s is %s", (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it.each([
    ["2606:4700:4700::1111", "public"],
    ["::", "unspecified"],
    ["::1", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["fc00::1", "unique-local"],
    ["fd12:3456:789a::1", "unique-local"],
    ["ff02::1", "multicast"],
    ["2001:db8::1", "reserved"],
    // IPv4 inside IPv6 is classified by the IPv4 address it reaches.
    ["::ffff:127.0.0.1", "loopback"],
    ["::ffff:7f00:1", "loopback"],
    ["::ffff:169.254.169.254", "link-local"],
    ["::ffff:10.0.0.1", "private"],
    ["::ffff:8.8.8.8", "public"],
    ["::127.0.0.1", "loopback"],
    ["64:ff9b::10.0.0.1", "private"],
    ["2002:c0a8:0101::1", "private"],
  ] as const)("IPv6 %s is %s", (address, kind) => {
    expect(classifyAddress(address)).toBe(kind);
  });

  it("refuses what is not an address", () => {
    expect(() => classifyAddress("localhost")).toThrow(/Not an IP address/);
    expect(addressBytes("1.2.3")).toBeNull();
  });
});

describe("isAllowedAddress", () => {
  it("allows public addresses only, by default", () => {
    expect(isAllowedAddress("8.8.8.8", strict)).toBe(true);
    for (const address of [
      "127.0.0.1",
      "::1",
      "10.0.0.1",
      "169.254.169.254",
      "::ffff:127.0.0.1",
      "fd00::1",
      "0.0.0.0",
    ]) {
      expect(isAllowedAddress(address, strict), address).toBe(false);
    }
  });

  it("allows listed ranges, IPv4-mapped addresses included, and nothing else", () => {
    const loopback: OutboundPolicy = { allowPrivate: false, allowCidrs: ["127.0.0.0/8", "::1/128"] };
    expect(isAllowedAddress("127.0.0.1", loopback)).toBe(true);
    expect(isAllowedAddress("127.1.2.3", loopback)).toBe(true);
    expect(isAllowedAddress("::1", loopback)).toBe(true);
    expect(isAllowedAddress("::ffff:127.0.0.1", loopback)).toBe(true);
    expect(isAllowedAddress("10.0.0.1", loopback)).toBe(false);
    expect(isAllowedAddress("169.254.169.254", loopback)).toBe(false);
  });

  it("allows everything with allowPrivate", () => {
    expect(isAllowedAddress("10.0.0.1", { allowPrivate: true, allowCidrs: [] })).toBe(true);
  });
});

describe("checkTarget", () => {
  const resolveTo =
    (...addresses: string[]) =>
    async () =>
      addresses.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));

  it("refuses names resolving to a private address, even among public ones", async () => {
    await expect(
      checkTarget("https://hooks.example/x", strict, resolveTo("93.184.215.14", "10.0.0.5")),
    ).rejects.toThrow(
      "hooks.example resolves to 10.0.0.5, not a public address (private); this server does not contact it",
    );
    await expect(checkTarget("https://meta.example/", strict, resolveTo("169.254.169.254"))).rejects.toThrow(
      /link-local/,
    );
    await expect(checkTarget("http://10.1.1.1/", strict)).rejects.toThrow(
      "10.1.1.1 is not a public address (private); this server does not contact it",
    );
  });

  it("refuses IP literals, other schemes, credentials and names that do not resolve", async () => {
    await expect(checkTarget("http://127.0.0.1:8080/", strict)).rejects.toThrow(/loopback/);
    await expect(checkTarget("http://[::1]/", strict)).rejects.toThrow(/loopback/);
    await expect(checkTarget("http://[::ffff:a9fe:a9fe]/", strict)).rejects.toThrow(/link-local/);
    await expect(checkTarget("ftp://93.184.215.14/", strict)).rejects.toThrow(/only http and https/);
    await expect(checkTarget("https://user:pw@93.184.215.14/", strict)).rejects.toThrow(/credentials/);
    await expect(
      checkTarget("https://nowhere.invalid/", strict, async () => {
        throw new Error("ENOTFOUND");
      }),
    ).rejects.toThrow("nowhere.invalid does not resolve");
  });

  it("returns every checked address", async () => {
    const checked = await checkTarget(
      "https://hooks.example/x",
      strict,
      resolveTo("93.184.215.14", "2606:4700::1"),
    );
    expect(checked.addresses.map((a) => a.address)).toEqual(["93.184.215.14", "2606:4700::1"]);
  });
});
