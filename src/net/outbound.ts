// Requests the platform makes to addresses its users chose (webhooks, and every kind of source:
// HTTP, FILE URLs, PostgreSQL, SFTP, S3 endpoints). A user must not be able to point us at our
// own network: the loopback interface, cloud metadata (169.254.169.254), databases on private
// addresses. Every address a name resolves to is checked, and the connection is pinned to the
// checked addresses, so a DNS answer that changes between the check and the connect (rebinding)
// cannot slip through. Redirects are not followed.
import { lookup as dnsLookup } from "node:dns/promises";
import type { LookupAddress } from "node:dns";
import { Socket, isIP, type LookupFunction } from "node:net";
import { Agent, fetch, type RequestInit, type Response } from "undici";

export type AddressClass =
  | "public"
  | "private"
  | "loopback"
  | "link-local"
  | "unique-local"
  | "multicast"
  | "unspecified"
  | "reserved";

export interface OutboundPolicy {
  /** Allows every non-public address (development, or a platform on a private network). */
  allowPrivate: boolean;
  /** Non-public ranges allowed anyway, e.g. `127.0.0.0/8` in tests or one internal subnet. */
  allowCidrs: readonly string[];
}

export function outboundPolicy(config: {
  OUTBOUND_ALLOW_PRIVATE: boolean;
  OUTBOUND_ALLOW_CIDRS: readonly string[];
}): OutboundPolicy {
  for (const cidr of config.OUTBOUND_ALLOW_CIDRS) parseCidr(cidr);
  return { allowPrivate: config.OUTBOUND_ALLOW_PRIVATE, allowCidrs: config.OUTBOUND_ALLOW_CIDRS };
}

/** A target we refuse to contact; the message names the host, never credentials or paths. */
export class OutboundRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OutboundRefused";
  }
}

interface Range {
  bytes: Uint8Array;
  prefix: number;
}

/** IPv4 as 4 bytes, IPv6 as 16; null when not an address. */
export function addressBytes(address: string): Uint8Array | null {
  const version = isIP(address);
  if (version === 4) return Uint8Array.from(address.split(".").map(Number));
  if (version !== 6) return null;
  let text = address.replace(/%.*$/, "");
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    tail.push(...dotted[1]!.split(".").map(Number));
    text = `${text.slice(0, -dotted[1]!.length)}0:0`;
  }
  const [head = "", rest] = text.split("::") as [string, string | undefined];
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const fill = rest === undefined ? [] : Array<string>(8 - left.length - right.length).fill("0");
  const words = [...left, ...fill, ...right].map((g) => parseInt(g, 16));
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[i * 2] = word >> 8;
    bytes[i * 2 + 1] = word & 0xff;
  });
  if (tail.length) bytes.set(tail, 12);
  return bytes;
}

function parseCidr(cidr: string): Range {
  const [address = "", bits] = cidr.split("/");
  const bytes = addressBytes(address);
  const prefix = bits === undefined ? (bytes?.length ?? 0) * 8 : Number(bits);
  if (!bytes || !Number.isInteger(prefix) || prefix < 0 || prefix > bytes.length * 8) {
    throw new Error(`Invalid CIDR range: ${cidr}`);
  }
  return { bytes, prefix };
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  if (bytes.length !== range.bytes.length) return false;
  for (let bit = 0; bit < range.prefix; bit++) {
    const mask = 0x80 >> (bit % 8);
    if ((bytes[bit >> 3]! & mask) !== (range.bytes[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** One special-purpose block: what it is, and, for the translation forms, where an IPv4 sits. */
export interface SpecialRange {
  cidr: string;
  kind: AddressClass;
  /** The form carries an IPv4 address at this byte offset: it is that address on the wire. */
  embedsIpv4At?: number;
}

/**
 * IANA's IPv4 Special-Purpose Address Registry (RFC 6890 and successors), every entry, refused
 * whether or not the registry calls it globally reachable (anycast relays and AS112 are no
 * webhook receivers), plus multicast. The registry's list is the fixture
 * test/fixtures/iana-ipv4-special-registry.csv; the unit test checks every entry is here.
 */
export const SPECIAL_IPV4: readonly SpecialRange[] = [
  { cidr: "0.0.0.0/8", kind: "unspecified" },
  { cidr: "0.0.0.0/32", kind: "unspecified" },
  { cidr: "10.0.0.0/8", kind: "private" },
  { cidr: "100.64.0.0/10", kind: "private" },
  { cidr: "127.0.0.0/8", kind: "loopback" },
  { cidr: "169.254.0.0/16", kind: "link-local" },
  { cidr: "172.16.0.0/12", kind: "private" },
  { cidr: "192.0.0.0/24", kind: "reserved" },
  { cidr: "192.0.0.0/29", kind: "reserved" },
  { cidr: "192.0.0.8/32", kind: "reserved" },
  { cidr: "192.0.0.9/32", kind: "reserved" },
  { cidr: "192.0.0.10/32", kind: "reserved" },
  { cidr: "192.0.0.170/32", kind: "reserved" },
  { cidr: "192.0.0.171/32", kind: "reserved" },
  { cidr: "192.0.2.0/24", kind: "reserved" },
  { cidr: "192.31.196.0/24", kind: "reserved" },
  { cidr: "192.52.193.0/24", kind: "reserved" },
  { cidr: "192.88.99.0/24", kind: "reserved" },
  { cidr: "192.175.48.0/24", kind: "reserved" },
  { cidr: "192.168.0.0/16", kind: "private" },
  { cidr: "198.18.0.0/15", kind: "reserved" },
  { cidr: "198.51.100.0/24", kind: "reserved" },
  { cidr: "203.0.113.0/24", kind: "reserved" },
  { cidr: "224.0.0.0/4", kind: "multicast" },
  { cidr: "240.0.0.0/4", kind: "reserved" },
  { cidr: "255.255.255.255/32", kind: "reserved" },
];

/**
 * IANA's IPv6 Special-Purpose Address Registry, every entry (fixture
 * test/fixtures/iana-ipv6-special-registry.csv), plus older forms still routed somewhere:
 * IPv4-compatible ::/96, SIIT's IPv4-translated ::ffff:0:0:0/96, site-local and multicast.
 * Translation forms whose IPv4 is well defined (mapped, the well-known NAT64 prefix, 6to4) are
 * judged by that IPv4; the local-use NAT64 prefix and Teredo reach addresses we cannot see and
 * are refused whole.
 */
export const SPECIAL_IPV6: readonly SpecialRange[] = [
  { cidr: "::1/128", kind: "loopback" },
  { cidr: "::/128", kind: "unspecified" },
  { cidr: "::ffff:0:0/96", kind: "reserved", embedsIpv4At: 12 },
  { cidr: "64:ff9b::/96", kind: "reserved", embedsIpv4At: 12 },
  { cidr: "64:ff9b:1::/48", kind: "private" },
  { cidr: "100::/64", kind: "reserved" },
  { cidr: "100:0:0:1::/64", kind: "reserved" },
  { cidr: "2001::/23", kind: "reserved" },
  { cidr: "2001::/32", kind: "reserved" },
  { cidr: "2001:1::1/128", kind: "reserved" },
  { cidr: "2001:1::2/128", kind: "reserved" },
  { cidr: "2001:1::3/128", kind: "reserved" },
  { cidr: "2001:2::/48", kind: "reserved" },
  { cidr: "2001:3::/32", kind: "reserved" },
  { cidr: "2001:4:112::/48", kind: "reserved" },
  { cidr: "2001:10::/28", kind: "reserved" },
  { cidr: "2001:20::/28", kind: "reserved" },
  { cidr: "2001:30::/28", kind: "reserved" },
  { cidr: "2001:db8::/32", kind: "reserved" },
  { cidr: "2002::/16", kind: "reserved", embedsIpv4At: 2 },
  { cidr: "2620:4f:8000::/48", kind: "reserved" },
  { cidr: "3fff::/20", kind: "reserved" },
  { cidr: "5f00::/16", kind: "reserved" },
  { cidr: "fc00::/7", kind: "unique-local" },
  { cidr: "fe80::/10", kind: "link-local" },
  // Not in the registry, still special.
  { cidr: "::/96", kind: "reserved", embedsIpv4At: 12 },
  { cidr: "::ffff:0:0:0/96", kind: "private" },
  { cidr: "fec0::/10", kind: "private" },
  { cidr: "ff00::/8", kind: "multicast" },
];

// Longest prefix first, so the most specific block decides (::1/128 before ::/96).
const compile = (table: readonly SpecialRange[]) =>
  table
    .map((entry) => ({ ...entry, range: parseCidr(entry.cidr) }))
    .sort((a, b) => b.range.prefix - a.range.prefix);
const IPV4 = compile(SPECIAL_IPV4);
const IPV6 = compile(SPECIAL_IPV6);

const IPV4_MAPPED = parseCidr("::ffff:0:0/96");

/** What kind of address this is; throws for a string that is not an IP address. */
export function classifyAddress(address: string): AddressClass {
  const bytes = addressBytes(address);
  if (!bytes) throw new Error(`Not an IP address: ${address}`);
  return classifyBytes(bytes);
}

function classifyBytes(bytes: Uint8Array): AddressClass {
  const match = (bytes.length === 16 ? IPV6 : IPV4).find((r) => inRange(bytes, r.range));
  if (!match) return "public";
  if (match.embedsIpv4At === undefined) return match.kind;
  return classifyBytes(bytes.slice(match.embedsIpv4At, match.embedsIpv4At + 4));
}

/** Whether the policy lets us connect to this address. */
export function isAllowedAddress(address: string, policy: OutboundPolicy): boolean {
  const bytes = addressBytes(address);
  if (!bytes) return false;
  if (classifyBytes(bytes) === "public" || policy.allowPrivate) return true;
  // ::ffff:127.0.0.1 is 127.0.0.1 on the wire: an IPv4 range allows it too.
  const forms = inRange(bytes, IPV4_MAPPED) ? [bytes, bytes.slice(12)] : [bytes];
  return policy.allowCidrs.some((cidr) => forms.some((form) => inRange(form, parseCidr(cidr))));
}

export interface CheckedTarget {
  url: URL;
  /** Every address the host resolved to, all allowed; connections go only to these. */
  addresses: LookupAddress[];
}

export type Resolver = (hostname: string) => Promise<LookupAddress[]>;

const systemResolver: Resolver = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

/**
 * Checks a URL before we contact it: http(s) only, no credentials in it, and every address its
 * host resolves to allowed by the policy (one disallowed address refuses the whole name, since we
 * cannot know which one a client would pick).
 */
export async function checkTarget(
  target: string | URL,
  policy: OutboundPolicy,
  resolve: Resolver = systemResolver,
): Promise<CheckedTarget> {
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new OutboundRefused("not a valid URL");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new OutboundRefused("only http and https URLs are allowed");
  }
  if (url.username || url.password) throw new OutboundRefused("the URL must not carry credentials");
  const addresses = await checkHost(url.hostname, policy, resolve);
  return { url, addresses };
}

/**
 * Checks a host name or address (an SFTP or PostgreSQL server, an S3 endpoint's host) under the
 * policy: every address it resolves to must be allowed. Returns them; connect only to these.
 */
export async function checkHost(
  hostname: string,
  policy: OutboundPolicy,
  resolve: Resolver = systemResolver,
): Promise<LookupAddress[]> {
  const host = hostname.replace(/^\[(.*)\]$/, "$1");
  let addresses: LookupAddress[];
  if (isIP(host)) {
    addresses = [{ address: host, family: isIP(host) }];
  } else {
    try {
      addresses = host ? await resolve(host) : [];
    } catch {
      throw new OutboundRefused(`${host} does not resolve`);
    }
    if (addresses.length === 0) throw new OutboundRefused(`${host || "(empty host)"} does not resolve`);
  }
  const refused = addresses.find((a) => !isAllowedAddress(a.address, policy));
  if (refused) {
    const kind = classifyAddress(refused.address);
    throw new OutboundRefused(
      refused.address === host
        ? `${host} is not a public address (${kind}); this server does not contact it`
        : `${host} resolves to ${refused.address}, not a public address (${kind}); this server does not contact it`,
    );
  }
  return addresses;
}

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** A `lookup` for sockets and agents that answers only the addresses already checked. */
export function pinnedLookup(addresses: LookupAddress[]): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: LookupCallback) => {
    if (options.all) callback(null, addresses);
    else callback(null, addresses[0]!.address, addresses[0]!.family);
  }) as LookupFunction;
}

/**
 * An unconnected TCP socket for clients that take one and call `connect(port, host)` themselves
 * (pg's `stream`): the host name stays (TLS checks it), but only the checked addresses are tried,
 * every family in turn as Node does for a name.
 */
export function pinnedSocket(addresses: LookupAddress[]): Socket {
  const socket = new Socket();
  const lookup = pinnedLookup(addresses);
  const connect = socket.connect.bind(socket) as (options: object) => Socket;
  socket.connect = ((port: number, host: string) =>
    connect({ port, host, lookup, autoSelectFamily: true })) as Socket["connect"];
  return socket;
}

/** A dispatcher whose connections can only reach the addresses already checked. */
function pinnedAgent(addresses: LookupAddress[], timeoutMs: number): Agent {
  return new Agent({
    connect: { timeout: timeoutMs, lookup: pinnedLookup(addresses) },
    // One request per agent: nothing to keep alive.
    pipelining: 0,
  });
}

export interface GuardedFetchOptions {
  /** For the whole exchange, the response body included. */
  timeoutMs: number;
  /** For the TCP/TLS connect alone. @default timeoutMs */
  connectTimeoutMs?: number;
  resolve?: Resolver;
}

/**
 * `fetch` to a user-chosen URL under the policy: the target is checked at send time, the
 * connection pinned to the checked addresses, redirects returned as they are (a 3xx is an answer,
 * not an instruction to go elsewhere). The returned response must be consumed or cancelled; the
 * connection closes with it.
 */
export async function guardedFetch(
  target: string | URL,
  init: Omit<RequestInit, "dispatcher" | "redirect">,
  policy: OutboundPolicy,
  options: GuardedFetchOptions,
): Promise<Response> {
  const { url, addresses } = await checkTarget(target, policy, options.resolve);
  const agent = pinnedAgent(addresses, options.connectTimeoutMs ?? options.timeoutMs);
  const signal = init.signal
    ? AbortSignal.any([init.signal, AbortSignal.timeout(options.timeoutMs)])
    : AbortSignal.timeout(options.timeoutMs);
  try {
    const response = await fetch(url, { ...init, signal, redirect: "manual", dispatcher: agent });
    // close() lets the request in flight finish (its body read or cancelled), then frees the socket.
    void agent.close();
    return response;
  } catch (error) {
    void agent.destroy();
    throw error;
  }
}

export interface PinnedResponse {
  status: number;
  /** The first `excerptBytes` of the body, the rest discarded. */
  excerpt: string;
}

export interface PinnedAgentOptions {
  /** Open connections per receiver (origin and its checked addresses). */
  connections: number;
  /** How long an unused agent stays open before it is closed. @default 60_000 */
  idleMs?: number;
}

/**
 * Keep-alive connections to user-chosen receivers, pinned like `guardedFetch`'s: every request
 * checks its target under the policy first, and goes through an agent whose connections can only
 * reach the addresses that check returned. Agents are kept per origin and address set, so a name
 * that resolves elsewhere gets a new agent (pinned to the new, checked addresses) and the old
 * one is closed once idle. Redirects are answers, never followed (undici's `request` does not).
 */
export class PinnedAgents {
  readonly #agents = new Map<string, { agent: Agent; usedAt: number }>();
  readonly #idleMs: number;
  #sweptAt = 0;

  constructor(
    private readonly policy: OutboundPolicy,
    private readonly options: PinnedAgentOptions,
    private readonly resolve: Resolver = systemResolver,
  ) {
    this.#idleMs = options.idleMs ?? 60_000;
  }

  async post(
    target: string,
    init: { headers: Record<string, string>; body: string },
    timing: { timeoutMs: number; excerptBytes: number },
  ): Promise<PinnedResponse> {
    const { url, addresses } = await checkTarget(target, this.policy, this.resolve);
    const agent = this.#agent(url, addresses, timing.timeoutMs);
    const signal = AbortSignal.timeout(timing.timeoutMs);
    const response = await agent.request({
      origin: url.origin,
      path: `${url.pathname}${url.search}`,
      method: "POST",
      headers: init.headers,
      body: init.body,
      signal,
    });
    return { status: response.statusCode, excerpt: await readExcerpt(response.body, timing.excerptBytes) };
  }

  async close(): Promise<void> {
    const agents = [...this.#agents.values()];
    this.#agents.clear();
    await Promise.all(agents.map(({ agent }) => agent.close()));
  }

  #agent(url: URL, addresses: LookupAddress[], timeoutMs: number): Agent {
    const now = Date.now();
    if (now - this.#sweptAt > this.#idleMs) this.#sweep(now);
    const key = `${url.origin} ${addresses.map((a) => a.address).join(",")}`;
    let entry = this.#agents.get(key);
    if (!entry) {
      const agent = new Agent({
        connect: { timeout: timeoutMs, lookup: pinnedLookup(addresses) },
        connections: this.options.connections,
        keepAliveTimeout: 10_000,
      });
      entry = { agent, usedAt: now };
      this.#agents.set(key, entry);
    }
    entry.usedAt = now;
    return entry.agent;
  }

  #sweep(now: number): void {
    this.#sweptAt = now;
    for (const [key, entry] of this.#agents) {
      if (now - entry.usedAt < this.#idleMs) continue;
      this.#agents.delete(key);
      void entry.agent.close();
    }
  }
}

/** The first bytes of a response body as text; the rest is read and discarded. */
async function readExcerpt(body: AsyncIterable<Buffer> & { destroy(): void }, limit: number) {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body) {
      if (size < limit) chunks.push(chunk);
      size += chunk.length;
      if (size >= limit * 64) {
        // A receiver answering at length: stop reading and let the connection go.
        body.destroy();
        break;
      }
    }
  } catch {
    // A body cut off after the status: the status is the answer.
  }
  return Buffer.concat(chunks).subarray(0, limit).toString("utf8");
}
