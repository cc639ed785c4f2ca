// `datahus seed`: a demo marketplace a new user can query at once. A publisher, "Demo Data Co",
// with three published datasets loaded from demo/*.ndjson (one OPEN, one METERED, one PURCHASED),
// and a buyer, "Demo Buyer", with credits and an API key, printed with example requests.
//
// Idempotent: every step first looks for what it would create, so a second run changes nothing and
// prints the same key (demo-key.ts). Datasets an operator has since unpublished or archived stay so.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import type { Stores } from "../stores.js";
import type { Config } from "../config.js";
import { findProjectRoot } from "../db/postgres-migrate.js";
import type { Dataset, PrismaClient, User } from "../generated/prisma/client.js";
import { encodeGlobalId } from "../graphql/relay.js";
import { ROLE_SCOPES, type AuthenticatedCaller } from "../identity/caller.js";
import type { Logger } from "../observability/logger.js";
import { ref } from "../records/read.service.js";
import { writeRecords } from "../records/records.writer.js";
import type { Services } from "../services.js";
import { DEMO_DATASETS, type DemoDataset } from "./datasets.js";
import { deriveDemoApiKey } from "./demo-key.js";

export const DEMO_PUBLISHER = {
  name: "Demo Data Co",
  email: "publisher@demo.datahus.example",
  role: "PUBLISHER",
} as const;
export const DEMO_BUYER = { name: "Demo Buyer", email: "buyer@demo.datahus.example", role: "BUYER" } as const;
/** Added to the buyer's signup credits, once (the top-up's idempotency key makes reruns no-ops). */
export const DEMO_CREDITS = 10_000n;
export const DEMO_RUN_ID = "demo-seed";

export interface SeededDataset {
  id: string;
  slug: string;
  access: Dataset["access"];
  status: Dataset["status"];
  rows: number;
}

export interface SeedResult {
  /** What this run added; empty on a rerun. */
  created: string[];
  /** The demo buyer's key; null when someone revoked it or it expired. */
  apiKey: string | null;
  balance: bigint;
  datasets: SeededDataset[];
}

type Role = "PUBLISHER" | "BUYER";

/** Seeds the demo and writes its summary (the key and example requests) with `write`. */
export async function seedDemo(
  services: Services,
  stores: Stores,
  config: Config,
  log: Logger,
  write: (text: string) => void = (text) => process.stdout.write(text),
): Promise<SeedResult> {
  const { prisma } = stores;
  const created: string[] = [];
  const publisher = await ensureAccount(services, prisma, DEMO_PUBLISHER, created);
  const buyer = await ensureAccount(services, prisma, DEMO_BUYER, created);

  const topUp = await services.credits.ledger.topUp(
    buyer.accountId,
    DEMO_CREDITS,
    DEMO_RUN_ID,
    "demo credits",
  );
  if (!topUp.replayed) created.push(`${DEMO_CREDITS} credits for ${DEMO_BUYER.name}`);
  const apiKey = await ensureDemoKey(prisma, buyer, config.JWT_SECRET, created);

  const dir = join(findProjectRoot(), "demo");
  const datasets: SeededDataset[] = [];
  for (const spec of DEMO_DATASETS) {
    const dataset = await ensureDataset(services, stores, config, publisher, spec, dir, log, created);
    datasets.push({
      id: dataset.id,
      slug: dataset.slug,
      access: dataset.access,
      status: dataset.status,
      rows: Number(dataset.rowCount),
    });
  }

  const result = {
    created,
    apiKey,
    balance: await services.credits.ledger.balance(buyer.accountId),
    datasets,
  };
  log.info({ created }, created.length ? "demo seeded" : "demo already seeded");
  write(summary(result, baseUrl(config)));
  return result;
}

async function ensureAccount(
  services: Services,
  prisma: PrismaClient,
  who: { name: string; email: string; role: Role },
  created: string[],
): Promise<AuthenticatedCaller> {
  const existing = await prisma.user.findUnique({ where: { email: who.email } });
  if (existing) {
    if (existing.role !== who.role) {
      throw new Error(`${who.email} exists with the role ${existing.role}, not ${who.role}: not the demo's`);
    }
    return callerFor(existing, who.role);
  }
  const { user, apiKey } = await services.auth.signup(who);
  // Signup's key was shown to nobody but this function, so nobody could ever use it.
  await prisma.apiKey.delete({ where: { id: apiKey.id } });
  created.push(`${who.role.toLowerCase()} ${who.name}`);
  return callerFor(user, who.role);
}

/** Acts as the demo user through the services, as that user's session would. */
function callerFor(user: User, role: Role): AuthenticatedCaller {
  return {
    kind: "user",
    accountId: user.accountId,
    userId: user.id,
    role,
    scopes: ROLE_SCOPES[role],
    limits: { perMinute: 0, perHour: null, perMonth: null }, // rate limits apply to requests only
  };
}

async function ensureDemoKey(
  prisma: PrismaClient,
  buyer: AuthenticatedCaller,
  jwtSecret: string,
  created: string[],
): Promise<string | null> {
  const key = deriveDemoApiKey(jwtSecret);
  const row = await prisma.apiKey.findUnique({ where: { secretHash: key.secretHash } });
  if (!row) {
    await prisma.apiKey.create({
      data: {
        accountId: buyer.accountId,
        userId: buyer.userId,
        name: "Demo key",
        prefix: key.prefix,
        secretHash: key.secretHash,
        scopes: [...ROLE_SCOPES.BUYER],
      },
    });
    created.push(`API key ${key.prefix}`);
    return key.key;
  }
  if (row.accountId !== buyer.accountId) throw new Error("The demo key belongs to another account");
  const now = new Date();
  const lapsed = (at: Date | null) => at !== null && at <= now;
  // Someone revoked (or rotated) the demo key on purpose: a seed does not bring it back.
  return row.revokedAt || lapsed(row.expiresAt) || lapsed(row.graceUntil) ? null : key.key;
}

async function ensureDataset(
  services: Services,
  stores: Stores,
  config: Config,
  publisher: AuthenticatedCaller,
  spec: DemoDataset,
  dir: string,
  log: Logger,
  created: string[],
): Promise<Dataset> {
  const { prisma } = stores;
  let dataset = await prisma.dataset.findUnique({ where: { slug: spec.input.slug } });
  if (dataset && dataset.accountId !== publisher.accountId) {
    throw new Error(`The slug ${spec.input.slug} belongs to another publisher; the demo cannot use it`);
  }
  if (!dataset) {
    dataset = await services.catalog.create(publisher, spec.input);
    created.push(`dataset ${dataset.slug}`);
  }
  // Version 0: never loaded. A seed stopped between the insert and this update loads again, which
  // is harmless: the same keys at the same version replace each other (ReplacingMergeTree).
  if (dataset.version === 0) {
    const rows = await readNdjson(join(dir, spec.file));
    await writeRecords(stores.clickhouse, config.CLICKHOUSE_DATABASE, ref(dataset), rows, {
      version: 1,
      runId: DEMO_RUN_ID,
    });
    dataset = await prisma.dataset.update({
      where: { id: dataset.id },
      data: { version: 1, rowCount: BigInt(rows.length), lastUpdatedAt: new Date() },
    });
    log.info({ slug: dataset.slug, rows: rows.length }, "demo dataset loaded");
    created.push(`${rows.length} records in ${dataset.slug}`);
  }
  if (dataset.status === "DRAFT") {
    dataset = await services.catalog.setStatus(publisher, dataset.id, "PUBLISHED");
  }
  return dataset;
}

export async function readNdjson(path: string): Promise<Record<string, unknown>[]> {
  const lines = (await readFile(path, "utf8")).split("\n");
  return lines.flatMap((line, i) => {
    if (line.trim() === "") return [];
    try {
      return [JSON.parse(line) as Record<string, unknown>];
    } catch (error) {
      throw new Error(`${path}:${i + 1}: not a JSON object`, { cause: error });
    }
  });
}

function baseUrl(config: Pick<Config, "HOST" | "PORT" | "TLS_CERT_FILE">): string {
  const host = ["0.0.0.0", "::", ""].includes(config.HOST) ? "127.0.0.1" : config.HOST;
  return `${config.TLS_CERT_FILE ? "https" : "http"}://${host.includes(":") ? `[${host}]` : host}:${config.PORT}`;
}

const ACCESS_NOTE: Record<Dataset["access"], string> = {
  OPEN: "free",
  METERED: "credits per 100 records",
  PURCHASED: "buy once, then free",
};

/** The text `datahus seed` prints: the same on every run, but for the first line and the balance. */
export function summary(result: SeedResult, url: string): string {
  const curl = (query: string) =>
    `curl -s ${url}/graphql -H 'content-type: application/json' -H "X-API-Key: $DATAHUS_KEY" \\\n` +
    `  -d '${JSON.stringify({ query })}'`;
  const purchased = result.datasets.find((d) => d.access === "PURCHASED");
  const width = Math.max(...result.datasets.map((d) => d.slug.length));
  const lines = [
    ...(result.created.length
      ? ["Demo marketplace seeded. Created:", ...result.created.map((item) => `  + ${item}`)]
      : ["Demo marketplace already seeded; nothing changed."]),
    "",
    `Datasets by ${DEMO_PUBLISHER.name}:`,
    ...result.datasets.map(
      (d) =>
        `  ${d.slug.padEnd(width)}  ${d.access.padEnd(9)} ${String(d.rows).padStart(5)} records  ` +
        `(${ACCESS_NOTE[d.access]}${d.status === "PUBLISHED" ? "" : `; ${d.status.toLowerCase()}`})`,
    ),
    "",
  ];
  if (result.apiKey === null) {
    lines.push(
      `The demo buyer's key was revoked or has lapsed; the seed does not restore it.`,
      `Sign up for a key of your own (README: "Sign up and authenticate").`,
    );
    return `${lines.join("\n")}\n`;
  }
  lines.push(
    `${DEMO_BUYER.name} has ${result.balance} credits. Its API key (the same on every run of the seed):`,
    "",
    `  export DATAHUS_KEY=${result.apiKey}`,
    "",
    `With the API running (${url}/graphql), browse the catalogue:`,
    curl("{ datasets(first: 10) { edges { node { slug title access rowCount } } } }"),
    "",
    "Read the first records of the free dataset (pass pageInfo.endCursor as after: for the next page):",
    curl(
      '{ dataset(slug: "weather_hourly") { records(first: 3) { edges { node { key values } } pageInfo { hasNextPage endCursor } } } }',
    ),
    "",
    "Sales per category from the metered dataset (an aggregate costs what 100 records cost: 1 credit):",
    curl(
      '{ dataset(slug: "retail_sales_daily") { aggregate(groupBy: [{ column: "category" }], metrics: [{ fn: SUM, column: "amount", alias: "revenue" }], first: 10) { edges { node { group metrics } } } } }',
    ),
  );
  if (purchased) {
    lines.push(
      "",
      `Buy ${purchased.slug}, then read it like the others:`,
      curl(
        `mutation { purchaseDataset(datasetId: "${encodeGlobalId("Dataset", purchased.id)}") { balance purchase { status } } }`,
      ),
    );
  }
  return `${lines.join("\n")}\n`;
}
