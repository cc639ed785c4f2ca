// Tenant isolation (the Access issue): two publishers and two buyers try every read and write of
// the schema across accounts, over HTTP with their own credentials; nothing crosses.
//
// What "crosses" means here is the read scope (src/identity/read-scope.ts): a caller sees its own
// account's rows, every PUBLISHED dataset, and the sales it is party to. Two deliberate, non-leaking
// paths across accounts are asserted as such:
// - `Dataset.publisher` is the publisher's public profile (name and slug), never its Account.
// - `Sale.buyer` / `Sale.seller` resolve the Account through the caller's scope, so the seller of
//   a sale sees `buyer: null` and the buyer sees `seller: null` (never the other's balance).
//
// Every request of this file goes through one recorder, and the last test scans every response for
// anything of another account: API key secrets and session tokens, key prefixes, emails, and the
// ids (global and raw) of objects the caller may not see.
import { readFileSync } from "node:fs";
import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { Kind, buildSchema, getOperationAST, print, type GraphQLSchema } from "graphql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeGlobalId, encodeGlobalId } from "../../src/graphql/relay.js";
import { graphqlSchema } from "../../src/graphql/schema.js";
import {
  IsoAccountsDocument,
  IsoApiKeysDocument,
  IsoCreateApiKeyDocument,
  IsoCreditTransactionsDocument,
  IsoDatasetUpdatedDocument,
  IsoDeliveryUpdatedDocument,
  IsoPipelineRunUpdatedDocument,
  IsoDatasetsDocument,
  IsoLoginDocument,
  IsoMeDocument,
  IsoNodeDocument,
  IsoNodesDocument,
  IsoPipelineRunsDocument,
  IsoPipelinesDocument,
  IsoReinstateAccountDocument,
  IsoRevokeApiKeyDocument,
  IsoRotateApiKeyDocument,
  IsoSalesDocument,
  IsoSetAccountPlanDocument,
  IsoSignupDocument,
  IsoSourcesDocument,
  IsoSuspendAccountDocument,
  AddDatasetColumnsDocument,
  ArchiveDatasetDocument,
  CategoriesDocument,
  CreateDatasetDocument,
  CreateSourceDocument,
  CreateDeliveryDocument,
  DeleteDeliveryDocument,
  DeliveriesDocument,
  PauseDeliveryDocument,
  RedeliverDocument,
  ResumeDeliveryDocument,
  RotateDeliverySecretDocument,
  SetLowCreditThresholdDocument,
  TriggerDeliveryDocument,
  UpdateDeliveryDocument,
  DatasetBySlugDocument,
  DeleteRecordsDocument,
  IngestRecordsDocument,
  DeleteSourceDocument,
  TestSourceConnectionDocument,
  UpdateSourceDocument,
  UpsertRecordsDocument,
  CreatePipelineDocument,
  DeletePipelineDocument,
  RunPipelineDocument,
  StartPipelineDocument,
  StopPipelineDocument,
  SyncSourceDocument,
  UpdatePipelineDocument,
  PublishDatasetDocument,
  UnpublishDatasetDocument,
  UpdateDatasetDocument,
  PurchaseDatasetDocument,
  SalesStatsDocument,
  TopUpCreditsDocument,
  UsageDocument,
} from "../generated/graphql.js";
import { liveClient, until, type LiveClient } from "../support/live.js";
import { startStack, type GraphQLResponse, type TestAccount, type TestStack } from "../support/stack.js";

/**
 * Every root field of the schema, and where this file covers it. A root field added to the schema
 * fails the completeness test below until it is added here and probed across accounts.
 */
const COVERED = {
  Query: [
    "accounts",
    "apiKeys",
    "categories",
    "creditTransactions",
    "dataset",
    "datasets",
    "deliveries",
    "me",
    "node",
    "nodes",
    "pipelineRuns",
    "pipelines",
    "sales",
    "salesStats",
    "sources",
    "usage",
  ],
  Mutation: [
    "addDatasetColumns",
    "archiveDataset",
    "createApiKey",
    "createDataset",
    "createDelivery",
    "createPipeline",
    "createSource",
    "deleteDelivery",
    "deletePipeline",
    "deleteRecords",
    "deleteSource",
    "ingestRecords",
    "login",
    "pauseDelivery",
    "publishDataset",
    "purchaseDataset",
    "redeliver",
    "reinstateAccount",
    "resumeDelivery",
    "revokeApiKey",
    "rotateApiKey",
    "rotateDeliverySecret",
    "runPipeline",
    "setAccountPlan",
    "setLowCreditThreshold",
    "signup",
    "startPipeline",
    "stopPipeline",
    "suspendAccount",
    "syncSource",
    "testSourceConnection",
    "topUpCredits",
    "triggerDelivery",
    "unpublishDataset",
    "updateDataset",
    "updateDelivery",
    "updatePipeline",
    "updateSource",
    "upsertRecords",
  ],
  Subscription: ["datasetUpdated", "deliveryUpdated", "pipelineRunUpdated"],
} as const;

/**
 * Root fields whose scoping is proven in their own files rather than probed here (yet): who may
 * call them and what a foreign id answers. earnings-api.test.ts (earnings, ledger, payouts, fee,
 * refunds, admin log: FORBIDDEN for the wrong role), admin.test.ts (roles and plans),
 * key-limits.test.ts (key limits on another account's key: NOT_FOUND; usage log), samples.test.ts
 * (another publisher's dataset: NOT_FOUND), credit-packs.test.ts (packs priced by admins only;
 * another account's order: unseen in creditOrders, NOT_FOUND to cancel; confirming is admin-only),
 * renewals.test.ts (another buyer's purchases: unseen in purchases, NOT_FOUND to cancel),
 * statements.test.ts (another account's statement: NOT_FOUND, over GraphQL and REST),
 * invitations.test.ts (inviting is admin-only; a token is accepted once, a forged one is NOT_FOUND).
 * A new root field still fails the guard below.
 */
const COVERED_ELSEWHERE = {
  Query: [
    "adminLog",
    "creditOrders",
    "creditPacks",
    "earnings",
    "earningsEntries",
    "payouts",
    "platformFee",
    "purchases",
    "statement",
    "usageLog",
  ],
  Mutation: [
    "acceptInvitation",
    "approvePayout",
    "buyCreditPack",
    "cancelCreditOrder",
    "cancelPurchase",
    "confirmCreditOrder",
    "inviteUser",
    "refundSale",
    "rejectPayout",
    "requestPayout",
    "resumePurchase",
    "setApiKeyLimits",
    "setCreditPack",
    "setDatasetSample",
    "setPlatformFee",
    "setUserRole",
    "updatePlan",
  ],
  Subscription: [],
} as const;

const PAGE = 100;
const NO_SUCH_UUID = "0190a000-0000-7000-8000-000000000000";
const CALLERS = ["P1", "P2", "B1", "B2"] as const;
type CallerName = (typeof CALLERS)[number];
/** The other party of each caller's one sale: B1 bought from P1, B2 from P2. */
const COUNTERPART = { P1: "B1", P2: "B2", B1: "P1", B2: "P2" } as const satisfies Record<
  CallerName,
  CallerName
>;
type PartyName = CallerName | "S";

type NodeType =
  | "Account"
  | "User"
  | "ApiKey"
  | "Dataset"
  | "Source"
  | "Pipeline"
  | "PipelineRun"
  | "PipelineLog"
  | "CreditTransaction"
  | "Sale"
  | "Delivery"
  | "DeliveryAttempt";

/** What the test knows about one row, read back from PostgreSQL. */
interface Owned {
  type: NodeType;
  rawId: string;
  /** Accounts that own the row or are party to it (a sale has two). */
  parties: string[];
  /** Datasets: PUBLISHED, so every caller may see it. */
  published: boolean;
}

interface Party {
  name: PartyName;
  role: "PUBLISHER" | "BUYER";
  account: TestAccount;
  password: string;
  /** The key made by signup and the one made with createApiKey. */
  keys: { headers: Record<string, string> }[];
  session: Record<string, string>;
}

interface Exchange {
  /** The raw account id the response was for; null: anonymous. */
  owner: string | null;
  operation: string;
  request: string;
  response: string;
}

let stack: TestStack;
let admin: TestAccount;
const parties = {} as Record<PartyName, Party>;
/** Each buyer's webhook delivery, by global id. */
const deliveries = {} as Record<"B1" | "B2", string>;
const liveClients: LiveClient[] = [];
const exchanges: Exchange[] = [];
const sentRootFields = new Set<string>();
/** Every credential (API key secret or session token) and whose it is. */
const credentials = new Map<string, string>();
/** Cross-account probes made, by kind, for the summary. */
const probes: Record<string, number> = {};
const count = (kind: string, n = 1) => {
  probes[kind] = (probes[kind] ?? 0) + n;
};

const prisma = () => stack.app.stores.prisma;

function credentialOf(headers: Record<string, string>): string | undefined {
  return headers["x-api-key"] ?? headers.authorization?.replace(/^Bearer\s+/i, "");
}

/** Sends a document over HTTP, keeping the raw response text and whose response it is. */
async function recordingGraphql<TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables?: TVars,
  headers: Record<string, string> = {},
): Promise<GraphQLResponse<TData>> {
  const operation = getOperationAST(document);
  if (!operation) throw new Error("one operation per document");
  const root = operation.operation === "mutation" ? "Mutation" : "Query";
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind === Kind.FIELD) sentRootFields.add(`${root}.${selection.name.value}`);
  }
  const credential = credentialOf(headers);
  let owner: string | null = null;
  if (credential !== undefined) {
    const known = credentials.get(credential);
    if (known === undefined) throw new Error("test bug: a credential the test does not know");
    owner = known;
  }
  const request = JSON.stringify({ query: print(document), variables });
  const response = await fetch(`${stack.url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: request,
  });
  const text = await response.text();
  const body = JSON.parse(text) as Omit<GraphQLResponse<TData>, "status" | "headers">;
  // signup and login answer for the account they create or log into, whoever sends them.
  const data = body.data as { signup?: { account: { id: string } }; login?: { user: { id: string } } } | null;
  if (data?.signup) owner = decodeGlobalId(data.signup.account.id).id;
  if (data?.login) {
    const user = await prisma().user.findUniqueOrThrow({
      where: { id: decodeGlobalId(data.login.user.id).id },
    });
    owner = user.accountId;
  }
  exchanges.push({ owner, operation: operation.name?.value ?? "anonymous", request, response: text });
  return { status: response.status, headers: response.headers, ...body };
}

const gql = <TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables: TVars,
  headers?: Record<string, string>,
) => stack.graphql(document, variables, headers);

/**
 * Subscribes over graphql-ws with the caller's credentials, recorded like an HTTP exchange.
 * "accepted" when the server started listening (then unsubscribed), else the refusal.
 */
async function recordingSubscribe<TData, TVars>(
  document: TypedDocumentNode<TData, TVars>,
  variables: TVars,
  headers: Record<string, string>,
): Promise<GraphQLResponse<TData> | "accepted"> {
  const operation = getOperationAST(document)!;
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind === Kind.FIELD) sentRootFields.add(`Subscription.${selection.name.value}`);
  }
  const owner = credentials.get(credentialOf(headers) ?? "");
  if (owner === undefined) throw new Error("test bug: a credential the test does not know");
  const client = liveClient(stack, headers);
  liveClients.push(client);
  const before = stack.app.live.active;
  const subscription = client.subscribe(document, variables);
  const outcome = await Promise.race([
    subscription.next(5000),
    until(() => stack.app.live.active > before, 5000).then(() => "accepted" as const),
  ]);
  await client.dispose();
  await until(() => stack.app.live.active === before, 5000, "the subscription to end");
  exchanges.push({
    owner,
    operation: operation.name?.value ?? "anonymous",
    request: JSON.stringify({ query: print(document), variables }),
    response: JSON.stringify(outcome),
  });
  if (outcome === "accepted") return outcome;
  return {
    status: 200,
    headers: new Headers(),
    ...(outcome as Omit<GraphQLResponse<TData>, "status" | "headers">),
  };
}

function ok<T>(res: GraphQLResponse<T>): T {
  expect(res.errors, JSON.stringify(res.errors)).toBeUndefined();
  expect(res.data).toBeTruthy();
  return res.data!;
}

function errorOf(res: GraphQLResponse<unknown>) {
  expect(res.errors, "an error was expected").toHaveLength(1);
  expect(res.data ?? null).toBeNull();
  return res.errors![0]!;
}

// ─── Who owns what ───────────────────────────────────────────────────────────

/** Every row of every node type in PostgreSQL, by global id. */
async function ownership(): Promise<Map<string, Owned>> {
  const db = prisma();
  const rows = new Map<string, Owned>();
  const put = (type: NodeType, rawId: string, parties: string[], published = false) =>
    rows.set(encodeGlobalId(type, rawId), { type, rawId, parties, published });
  for (const r of await db.account.findMany()) put("Account", r.id, [r.id]);
  for (const r of await db.user.findMany()) put("User", r.id, [r.accountId]);
  for (const r of await db.apiKey.findMany()) put("ApiKey", r.id, [r.accountId]);
  for (const r of await db.dataset.findMany()) put("Dataset", r.id, [r.accountId], r.status === "PUBLISHED");
  for (const r of await db.source.findMany()) put("Source", r.id, [r.accountId]);
  for (const r of await db.pipeline.findMany()) put("Pipeline", r.id, [r.accountId]);
  for (const r of await db.pipelineRun.findMany()) put("PipelineRun", r.id, [r.accountId]);
  for (const r of await db.pipelineLog.findMany({ include: { pipeline: true } })) {
    put("PipelineLog", r.id, [r.pipeline.accountId]);
  }
  for (const r of await db.creditTransaction.findMany()) put("CreditTransaction", r.id, [r.accountId]);
  for (const r of await db.sale.findMany()) put("Sale", r.id, [r.buyerAccountId, r.sellerAccountId]);
  for (const r of await db.delivery.findMany()) put("Delivery", r.id, [r.accountId]);
  for (const r of await db.deliveryAttempt.findMany({ include: { delivery: true } })) {
    put("DeliveryAttempt", r.id, [r.delivery.accountId]);
  }
  return rows;
}

/** The read scope as the isolation requirement states it; anonymous (null) sees the catalogue. */
function visibleTo(row: Owned, viewer: string | null): boolean {
  if (viewer !== null && viewer === admin.rawAccountId) return true;
  if (row.type === "Dataset" && row.published) return true;
  return viewer !== null && row.parties.includes(viewer);
}

const idsOf = (rows: Map<string, Owned>, type: NodeType, keep: (row: Owned) => boolean = () => true) =>
  [...rows].filter(([, row]) => row.type === type && keep(row)).map(([id]) => id);

const sorted = (ids: Iterable<string>) => [...ids].sort();

/** What the admin lists through every root connection (the admin sees everything). */
async function adminView() {
  const h = admin.headers;
  const pages = {
    Dataset: ok(await gql(IsoDatasetsDocument, { first: PAGE }, h)).datasets,
    Source: ok(await gql(IsoSourcesDocument, { first: PAGE }, h)).sources,
    Pipeline: ok(await gql(IsoPipelinesDocument, { first: PAGE, runsFirst: PAGE }, h)).pipelines,
    PipelineRun: ok(await gql(IsoPipelineRunsDocument, { first: PAGE }, h)).pipelineRuns,
    CreditTransaction: ok(await gql(IsoCreditTransactionsDocument, { first: PAGE }, h)).creditTransactions,
    Sale: ok(await gql(IsoSalesDocument, { first: PAGE }, h)).sales,
    Account: ok(await gql(IsoAccountsDocument, { first: PAGE }, h)).accounts,
    ApiKey: ok(await gql(IsoApiKeysDocument, { first: PAGE }, h)).apiKeys,
    Delivery: ok(await gql(DeliveriesDocument, { first: PAGE }, h)).deliveries,
  };
  const ids = {} as Record<keyof typeof pages, string[]>;
  for (const type of Object.keys(pages) as (keyof typeof pages)[]) {
    const page: { edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean } } = pages[type];
    expect(page.pageInfo.hasNextPage, `${type} fits one page`).toBe(false);
    ids[type] = page.edges.map((e) => e.node.id);
  }
  return { ids, pages };
}

/**
 * The global ids of every other account's objects the caller may not see, collected from the
 * admin's view (and the users, which no connection lists), with their owners from PostgreSQL.
 */
async function foreignIds(viewer: string): Promise<Map<string, Owned>> {
  const rows = await ownership();
  const { ids } = await adminView();
  // Users, delivery attempts and pipeline logs have no root connection; they are listed from the database.
  const listed = [
    ...Object.values(ids).flat(),
    ...idsOf(rows, "User"),
    ...idsOf(rows, "DeliveryAttempt"),
    ...idsOf(rows, "PipelineLog"),
  ];
  const foreign = new Map<string, Owned>();
  for (const id of listed) {
    const row = rows.get(id);
    expect(row, `the admin lists ${id}, which the database has`).toBeDefined();
    if (!visibleTo(row!, viewer)) foreign.set(id, row!);
  }
  return foreign;
}

async function accountSnapshot() {
  return prisma().account.findMany({
    orderBy: { id: "asc" },
    select: {
      id: true,
      planId: true,
      rateLimitPerMinute: true,
      status: true,
      suspendedAt: true,
      creditBalance: true,
      updatedAt: true,
    },
  });
}

async function apiKeySnapshot() {
  return prisma().apiKey.findMany({
    orderBy: { id: "asc" },
    select: {
      id: true,
      accountId: true,
      revokedAt: true,
      graceUntil: true,
      rotatedFromId: true,
      expiresAt: true,
      scopes: true,
    },
  });
}

// ─── Setup ───────────────────────────────────────────────────────────────────

async function signup(name: PartyName, role: "PUBLISHER" | "BUYER"): Promise<Party> {
  const password = `isolation password of ${name}`;
  const account = await stack.signup(name, role, password);
  credentials.set(account.secret, account.rawAccountId);
  return { name, role, account, password, keys: [{ headers: account.headers }], session: {} };
}

beforeAll(async () => {
  stack = await startStack();
  // Every request, including stack.signup's, goes through the recorder.
  stack.graphql = recordingGraphql;

  for (const [name, role] of [
    ["P1", "PUBLISHER"],
    ["P2", "PUBLISHER"],
    ["B1", "BUYER"],
    ["B2", "BUYER"],
    // A fifth account the admin suspends, so that reinstateAccount has something to undo.
    ["S", "BUYER"],
  ] as const) {
    parties[name] = await signup(name, role);
  }
  admin = await stack.admin();
  credentials.set(admin.secret, admin.rawAccountId);

  const db = prisma();
  const { P1, P2, B1, B2 } = parties;
  const published: Record<string, string> = {};
  for (const publisher of [P1, P2]) {
    const accountId = publisher.account.rawAccountId;
    const tag = publisher.name.toLowerCase();
    const dataset = (status: "PUBLISHED" | "DRAFT") =>
      db.dataset.create({
        data: {
          accountId,
          slug: `iso_${tag}_${status.toLowerCase()}`,
          title: `${publisher.name} ${status.toLowerCase()}`,
          category: "isolation",
          columns: [{ name: "id", type: "STRING", nullable: false }],
          keyColumns: ["id"],
          status,
          access: "METERED",
          pricePer100Records: 1n,
          tableName: `iso_${tag}_${status.toLowerCase()}`,
        },
      });
    published[publisher.name] = (await dataset("PUBLISHED")).id;
    const draft = await dataset("DRAFT");
    const source = await db.source.create({
      data: {
        accountId,
        name: `${publisher.name} source`,
        type: "HTTP",
        config: { url: `https://${tag}.example.com/data.json` },
      },
    });
    const pipeline = await db.pipeline.create({
      data: {
        accountId,
        sourceId: source.id,
        datasetId: draft.id,
        name: `${publisher.name} pipeline`,
        steps: [],
      },
    });
    const run = await db.pipelineRun.create({
      data: { pipelineId: pipeline.id, accountId, trigger: "MANUAL", status: "SUCCEEDED" },
    });
    await db.pipelineLog.create({
      data: { runId: run.id, pipelineId: pipeline.id, level: "INFO", message: `${publisher.name} run log` },
    });
  }
  // B1 reads 1,000 records of P1's published dataset, B2 of P2's: a charge, the seller's proceeds
  // and the sale, with the ledger and the balances kept consistent.
  for (const [buyer, seller] of [
    [B1, P1],
    [B2, P2],
  ] as const) {
    const datasetId = published[seller.name]!;
    await db.$transaction(async (tx) => {
      const b = await tx.account.update({
        where: { id: buyer.account.rawAccountId },
        data: { creditBalance: { decrement: 10n } },
      });
      await tx.creditTransaction.create({
        data: {
          accountId: b.id,
          kind: "CHARGE",
          amount: -10n,
          balanceAfter: b.creditBalance,
          datasetId,
          reference: `records of ${seller.name}`,
        },
      });
      const s = await tx.account.update({
        where: { id: seller.account.rawAccountId },
        data: { creditBalance: { increment: 10n } },
      });
      await tx.creditTransaction.create({
        data: {
          accountId: s.id,
          kind: "SALE_PROCEEDS",
          amount: 10n,
          balanceAfter: s.creditBalance,
          datasetId,
          reference: `records sold to ${buyer.name}`,
        },
      });
      await tx.sale.create({
        data: {
          datasetId,
          buyerAccountId: b.id,
          sellerAccountId: s.id,
          kind: "METERED",
          credits: 10n,
          records: 1000n,
        },
      });
    });
  }

  // A webhook for every caller, with one attempt: buyers on the dataset they read, publishers on
  // their own.
  for (const [party, seller] of [
    [P1, P1],
    [P2, P2],
    [B1, P1],
    [B2, P2],
  ] as const) {
    const delivery = await db.delivery.create({
      data: {
        accountId: party.account.rawAccountId,
        datasetId: published[seller.name]!,
        kind: "WEBHOOK",
        config: { url: `https://${party.name.toLowerCase()}.example.com/hook` },
      },
    });
    if (party === B1 || party === B2)
      deliveries[party.name as "B1" | "B2"] = encodeGlobalId("Delivery", delivery.id);
    await db.deliveryAttempt.create({
      data: {
        deliveryId: delivery.id,
        eventId: `event of ${party.name}`,
        eventType: "dataset.updated",
        attempt: 1,
        status: "SUCCEEDED",
        httpStatus: 200,
      },
    });
  }

  // A second key for every account, made through the API, and a dashboard session.
  for (const party of Object.values(parties)) {
    const created = ok(
      await gql(IsoCreateApiKeyDocument, { input: { name: "second" } }, party.account.headers),
    ).createApiKey;
    credentials.set(created.secret, party.account.rawAccountId);
    party.keys.push({ headers: { "x-api-key": created.secret } });
    const row = await db.apiKey.findUniqueOrThrow({ where: { id: decodeGlobalId(created.apiKey.id).id } });
    expect(row.accountId).toBe(party.account.rawAccountId);

    const login = ok(await gql(IsoLoginDocument, { email: party.account.email, password: party.password }));
    credentials.set(login.login.token, party.account.rawAccountId);
    party.session = { authorization: `Bearer ${login.login.token}` };
  }
  const adminKey = ok(await gql(IsoCreateApiKeyDocument, { input: { name: "second" } }, admin.headers));
  credentials.set(adminKey.createApiKey.secret, admin.rawAccountId);

  // The admin's writes work (so the FORBIDDEN ones below are not vacuous). PRO also lifts the
  // FREE plan's 100 requests a minute per key, which this file's probes would exceed.
  for (const name of CALLERS) {
    const moved = ok(
      await gql(
        IsoSetAccountPlanDocument,
        { accountId: parties[name].account.accountId, plan: "PRO" },
        admin.headers,
      ),
    ).setAccountPlan;
    expect(moved).toMatchObject({ id: parties[name].account.accountId, plan: { code: "PRO" } });
  }
  const suspended = ok(
    await gql(IsoSuspendAccountDocument, { accountId: parties.S.account.accountId }, admin.headers),
  ).suspendAccount;
  expect(suspended.status).toBe("SUSPENDED");
}, 120_000);

afterAll(async () => {
  await Promise.allSettled(liveClients.map((client) => client.dispose()));
  await stack?.close();
});

// ─── The tests ───────────────────────────────────────────────────────────────

describe("the schema", () => {
  const rootFields = (schema: GraphQLSchema) => ({
    Query: sorted(Object.keys(schema.getQueryType()?.getFields() ?? {})),
    Mutation: sorted(Object.keys(schema.getMutationType()?.getFields() ?? {})),
    Subscription: sorted(Object.keys(schema.getSubscriptionType()?.getFields() ?? {})),
  });
  const covered = {
    Query: sorted([...COVERED.Query, ...COVERED_ELSEWHERE.Query]),
    Mutation: sorted([...COVERED.Mutation, ...COVERED_ELSEWHERE.Mutation]),
    Subscription: sorted([...COVERED.Subscription, ...COVERED_ELSEWHERE.Subscription]),
  };

  it("has exactly the root fields this test covers (add new ones to the isolation test)", () => {
    expect(rootFields(graphqlSchema())).toEqual(covered);
    const committed = buildSchema(readFileSync(new URL("../../schema.graphql", import.meta.url), "utf8"));
    expect(rootFields(committed)).toEqual(covered);
  });
});

describe("the admin", () => {
  it("sees every account's rows, so that the isolation below is not vacuous", async () => {
    const rows = await ownership();
    const { ids, pages } = await adminView();
    for (const [type, listed] of Object.entries(ids)) {
      expect(sorted(listed), type).toEqual(sorted(idsOf(rows, type as NodeType)));
    }
    // What was seeded is there, for every party.
    const { P1, P2, B1, B2 } = parties;
    expect(ids.Dataset).toHaveLength(4);
    expect(ids.Source).toHaveLength(2);
    expect(ids.Pipeline).toHaveLength(2);
    expect(ids.PipelineRun).toHaveLength(2);
    expect(ids.Sale).toHaveLength(2);
    expect(ids.Delivery).toHaveLength(4);
    for (const party of [P1, P2, B1, B2]) {
      const own = (type: NodeType) =>
        idsOf(rows, type, (r) => r.parties.includes(party.account.rawAccountId));
      expect(own("CreditTransaction").length, party.name).toBe(2);
      expect(own("ApiKey").length, party.name).toBe(2);
      expect(own("Sale").length, party.name).toBe(1);
      expect(ids.Account).toContain(party.account.accountId);
    }
    // Sale.buyer and Sale.seller do resolve when the account is in scope.
    for (const { node } of pages.Sale.edges) {
      expect(node.buyer?.id).toMatch(/.+/);
      expect(node.seller?.id).toMatch(/.+/);
    }
    // So do the pipeline's links.
    for (const { node } of pages.Pipeline.edges) {
      expect(node.source?.id).toMatch(/.+/);
      expect(node.dataset?.status).toBe("DRAFT");
      expect(node.runs.edges).toHaveLength(1);
    }
  });

  it("can find any account by search", async () => {
    for (const name of CALLERS) {
      const found = ok(
        await gql(IsoAccountsDocument, { first: PAGE, search: parties[name].account.email }, admin.headers),
      );
      expect(found.accounts.edges.map((e) => e.node.id)).toEqual([parties[name].account.accountId]);
    }
  });
});

describe.each(CALLERS)("%s", (name) => {
  const me = () => parties[name];
  const own = () => me().account.rawAccountId;
  const isPublisher = name.startsWith("P");
  const credentialsOf = () => ({ "API key": me().keys[0]!.headers, session: me().session });
  const others = () => Object.values(parties).filter((p) => p.name !== name);

  it("me returns its own account and user, with every credential it has", async () => {
    const party = me();
    for (const headers of [...party.keys.map((k) => k.headers), party.session]) {
      const viewer = ok(await gql(IsoMeDocument, {}, headers)).me;
      expect(viewer.account.id).toBe(party.account.accountId);
      expect(viewer.account.name).toBe(name);
      expect(viewer.user).toMatchObject({
        id: party.account.userId,
        email: party.account.email,
        role: party.role,
      });
    }
  });

  it("lists through every root connection only what it owns, is party to, or is published", async () => {
    const rows = await ownership();
    const expected = (type: NodeType) => sorted(idsOf(rows, type, (r) => visibleTo(r, own())));
    const account = await prisma().account.findUniqueOrThrow({ where: { id: own() } });
    const ownAccount = {
      id: me().account.accountId,
      name,
      slug: account.slug,
      creditBalance: Number(account.creditBalance),
      status: "ACTIVE",
      rateLimitPerMinute: null,
      plan: { code: "PRO" },
    };
    for (const [credential, h] of Object.entries(credentialsOf())) {
      const why = `${name} with its ${credential}`;

      const datasets = ok(await gql(IsoDatasetsDocument, { first: PAGE }, h)).datasets;
      expect(sorted(datasets.edges.map((e) => e.node.id)), why).toEqual(expected("Dataset"));
      expect(datasets.edges.map((e) => e.node.status).filter((s) => s !== "PUBLISHED").length).toBe(
        isPublisher ? 1 : 0,
      );
      expect(datasets.edges).toHaveLength(isPublisher ? 3 : 2);
      for (const { node } of datasets.edges) {
        // The public profile of the dataset's publisher, nothing more.
        const owner = await prisma().account.findUniqueOrThrow({
          where: { id: rows.get(node.id)!.parties[0]! },
        });
        expect(node.publisher).toEqual({ name: owner.name, slug: owner.slug });
      }

      const accounts = ok(await gql(IsoAccountsDocument, { first: PAGE }, h)).accounts;
      expect(
        accounts.edges.map((e) => e.node),
        why,
      ).toEqual([ownAccount]);

      const apiKeys = ok(await gql(IsoApiKeysDocument, { first: PAGE }, h)).apiKeys;
      expect(sorted(apiKeys.edges.map((e) => e.node.id)), why).toEqual(expected("ApiKey"));
      expect(apiKeys.edges.length).toBeGreaterThanOrEqual(2);

      const ledger = ok(await gql(IsoCreditTransactionsDocument, { first: PAGE }, h)).creditTransactions;
      expect(sorted(ledger.edges.map((e) => e.node.id)), why).toEqual(expected("CreditTransaction"));
      expect(ledger.edges.map((e) => e.node.kind)).toEqual([
        "TOP_UP",
        isPublisher ? "SALE_PROCEEDS" : "CHARGE",
      ]);
      for (const { node } of ledger.edges) expect(node.account).toEqual(ownAccount);

      const sales = ok(await gql(IsoSalesDocument, { first: PAGE }, h)).sales;
      expect(sorted(sales.edges.map((e) => e.node.id)), why).toEqual(expected("Sale"));
      expect(sales.edges).toHaveLength(1);
      for (const { node } of sales.edges) {
        // The other party's Account is out of scope: null, never its balance or settings.
        expect(node.seller, why).toEqual(isPublisher ? ownAccount : null);
        expect(node.buyer, why).toEqual(isPublisher ? null : ownAccount);
        expect(node.dataset?.status).toBe("PUBLISHED");
        const seller = isPublisher ? me() : parties[COUNTERPART[name]];
        expect(rows.get(node.dataset!.id)!.parties).toEqual([seller.account.rawAccountId]);
      }

      const deliveries = ok(await gql(DeliveriesDocument, { first: PAGE }, h)).deliveries;
      expect(sorted(deliveries.edges.map((e) => e.node.id)), why).toEqual(expected("Delivery"));
      expect(deliveries.edges.length).toBeGreaterThanOrEqual(1);

      const sources = await gql(IsoSourcesDocument, { first: PAGE }, h);
      const pipelines = await gql(IsoPipelinesDocument, { first: PAGE, runsFirst: PAGE }, h);
      const runs = await gql(IsoPipelineRunsDocument, { first: PAGE }, h);
      if (isPublisher) {
        expect(sorted(ok(sources).sources.edges.map((e) => e.node.id)), why).toEqual(expected("Source"));
        expect(ok(sources).sources.edges).toHaveLength(1);
        const pipelineEdges = ok(pipelines).pipelines.edges;
        expect(sorted(pipelineEdges.map((e) => e.node.id)), why).toEqual(expected("Pipeline"));
        expect(pipelineEdges).toHaveLength(1);
        for (const { node } of pipelineEdges) {
          expect(expected("Source")).toContain(node.source?.id);
          expect(rows.get(node.dataset!.id)).toMatchObject({ parties: [own()], published: false });
          expect(sorted(node.runs.edges.map((e) => e.node.id))).toEqual(expected("PipelineRun"));
        }
        const runEdges = ok(runs).pipelineRuns.edges;
        expect(sorted(runEdges.map((e) => e.node.id)), why).toEqual(expected("PipelineRun"));
        expect(runEdges).toHaveLength(1);
        for (const { node } of runEdges) {
          expect(expected("Pipeline")).toContain(node.pipeline?.id);
          expect(expected("Source")).toContain(node.pipeline?.source?.id);
          expect(rows.get(node.pipeline!.dataset!.id)!.parties).toEqual([own()]);
        }
      } else {
        // Buyers lack the scope: the whole field is refused, not an empty list.
        for (const res of [sources, pipelines, runs]) {
          const error = errorOf(res);
          expect(error.message).toBe("Missing scope pipelines:read");
          expect(error.extensions).toEqual({ code: "FORBIDDEN", requiredScopes: ["pipelines:read"] });
        }
      }
    }
  });

  it("finds no other account through accounts(search:)", async () => {
    const db = prisma();
    for (const other of [...others(), { account: admin, name: "admin" }]) {
      const row = await db.account.findUniqueOrThrow({ where: { id: other.account.rawAccountId } });
      for (const search of [other.account.email, row.name, row.slug]) {
        for (const h of Object.values(credentialsOf())) {
          const found = ok(await gql(IsoAccountsDocument, { first: PAGE, search }, h)).accounts;
          expect(
            found.edges.filter((e) => e.node.id !== me().account.accountId),
            search,
          ).toEqual([]);
          count("accounts(search:)");
        }
      }
    }
  });

  it("pipelineRuns(pipelineId:) with another publisher's pipeline is empty (buyers: FORBIDDEN)", async () => {
    const foreign = await foreignIds(own());
    const pipelines = [...foreign].filter(([, r]) => r.type === "Pipeline").map(([id]) => id);
    expect(pipelines.length).toBeGreaterThan(0);
    for (const pipelineId of pipelines) {
      const res = await gql(IsoPipelineRunsDocument, { first: PAGE, pipelineId }, me().keys[0]!.headers);
      count("pipelineRuns(pipelineId:)");
      if (isPublisher) expect(ok(res).pipelineRuns.edges).toEqual([]);
      else expect(errorOf(res).extensions).toEqual({ code: "FORBIDDEN", requiredScopes: ["pipelines:read"] });
    }
  });

  it("node(id) and nodes(ids) return null for every object of another account", async () => {
    const foreign = await foreignIds(own());
    const types = new Set([...foreign.values()].map((r) => r.type));
    // Every kind of object of another account is probed.
    expect(sorted(types)).toEqual(
      sorted([
        "Account",
        "User",
        "ApiKey",
        "Dataset",
        "Source",
        "Pipeline",
        "PipelineRun",
        "PipelineLog",
        "CreditTransaction",
        "Sale",
        "Delivery",
        "DeliveryAttempt",
      ]),
    );
    const ids = [...foreign.keys()];
    expect(ids.length).toBeLessThanOrEqual(100);
    for (const h of Object.values(credentialsOf())) {
      for (const id of ids) {
        const res = ok(await gql(IsoNodeDocument, { id }, h));
        expect(res.node, `${name} node(${foreign.get(id)!.type})`).toBeNull();
        count("node(id)");
      }
      const many = ok(await gql(IsoNodesDocument, { ids }, h));
      expect(many.nodes).toEqual(ids.map(() => null));
      count("nodes(ids) entries", ids.length);
    }
  });

  it("node(id) and nodes(ids) do resolve what it may see (so the nulls above are not vacuous)", async () => {
    const rows = await ownership();
    const visible = [...rows].filter(([, r]) => visibleTo(r, own()));
    const ids = visible.map(([id]) => id);
    const many = ok(await gql(IsoNodesDocument, { ids }, me().keys[0]!.headers)).nodes;
    expect(many.map((n) => n && { __typename: n.__typename, id: n.id })).toEqual(
      visible.map(([id, r]) => ({ __typename: r.type, id })),
    );
    for (const node of many) {
      // Paths across accounts from the objects it sees stay inside its scope.
      if (node?.__typename === "Sale") {
        expect(node.buyer?.id ?? null).toBe(isPublisher ? null : me().account.accountId);
        expect(node.seller?.id ?? null).toBe(isPublisher ? me().account.accountId : null);
      }
      if (node?.__typename === "CreditTransaction") expect(node.account?.id).toBe(me().account.accountId);
      if (node?.__typename === "Pipeline") {
        expect(rows.get(node.source!.id)!.parties).toEqual([own()]);
        expect(rows.get(node.dataset!.id)!.parties).toEqual([own()]);
      }
      if (node?.__typename === "PipelineRun") expect(rows.get(node.pipeline!.id)!.parties).toEqual([own()]);
    }
    const self = ok(await gql(IsoNodeDocument, { id: me().account.userId }, me().keys[0]!.headers));
    expect(self.node?.id).toBe(me().account.userId);
  });

  it("reads another publisher's draft by slug as null, and cannot change another's dataset", async () => {
    const h = me().keys[0]!.headers;
    const db = prisma();
    const before = await db.dataset.findMany({ orderBy: { id: "asc" } });
    const runsBefore = await db.pipelineRun.count();
    for (const d of before) {
      const found = ok(await gql(DatasetBySlugDocument, { slug: d.slug }, h)).dataset;
      const visible = d.status === "PUBLISHED" || d.accountId === own();
      expect(found?.slug ?? null, d.slug).toBe(visible ? d.slug : null);
    }
    const expected = isPublisher ? "NOT_FOUND" : "FORBIDDEN";
    for (const d of before.filter((row) => row.accountId !== own())) {
      const id = encodeGlobalId("Dataset", d.id);
      const attempts = await Promise.all([
        gql(UpdateDatasetDocument, { id, input: { title: "taken over" } }, h),
        gql(AddDatasetColumnsDocument, { id, columns: [{ name: "x", type: "STRING", nullable: true }] }, h),
        gql(PublishDatasetDocument, { id }, h),
        gql(UnpublishDatasetDocument, { id }, h),
        gql(ArchiveDatasetDocument, { id }, h),
        gql(UpsertRecordsDocument, { datasetId: id, records: [{ id: "taken over" }] }, h),
        gql(DeleteRecordsDocument, { datasetId: id, keys: [{ id: "x" }] }, h),
        gql(IngestRecordsDocument, { datasetId: id, records: [{ id: "pushed in" }] }, h),
      ]);
      for (const res of attempts) expect(errorOf(res).extensions?.code, d.slug).toBe(expected);
    }
    expect(await db.dataset.findMany({ orderBy: { id: "asc" } })).toEqual(before);
    // No push was queued into another account's dataset.
    expect(await db.pipelineRun.count()).toBe(runsBefore);
    expect(await db.ingestBatch.count()).toBe(0);

    // Only published datasets count in the public categories.
    const categories = ok(await gql(CategoriesDocument, {}, h)).categories;
    expect(categories.find((c) => c.name === "isolation")?.datasetCount).toBe(2);

    // A new dataset always lands in the caller's own account; buyers cannot make one.
    const slug = `iso_new_${name.toLowerCase()}`;
    const created = await gql(
      CreateDatasetDocument,
      {
        input: {
          slug,
          title: "New",
          category: "isolation",
          access: "OPEN",
          keyColumns: ["id"],
          columns: [{ name: "id", type: "STRING", nullable: false }],
        },
      },
      h,
    );
    if (!isPublisher) {
      expect(errorOf(created).extensions?.code).toBe("FORBIDDEN");
      return;
    }
    expect(created.errors).toBeUndefined();
    const row = await db.dataset.findUniqueOrThrow({ where: { slug } });
    expect(row.accountId).toBe(own());
  });

  it("cannot change, delete or test another account's source, and creates sources only in its own", async () => {
    const h = me().keys[0]!.headers;
    const db = prisma();
    const foreign = await foreignIds(own());
    const sources = [...foreign].filter(([, r]) => r.type === "Source").map(([id]) => id);
    expect(sources.length).toBeGreaterThan(0);
    const before = await db.source.findMany({ orderBy: { id: "asc" } });
    const expected = isPublisher ? "NOT_FOUND" : "FORBIDDEN";
    for (const id of sources) {
      const attempts = await Promise.all([
        gql(UpdateSourceDocument, { id, input: { name: "taken over", secrets: { token: "mine now" } } }, h),
        gql(DeleteSourceDocument, { id }, h),
        gql(TestSourceConnectionDocument, { id }, h),
      ]);
      for (const res of attempts) expect(errorOf(res).extensions?.code, id).toBe(expected);
      count("source writes", attempts.length);
    }
    expect(await db.source.findMany({ orderBy: { id: "asc" } })).toEqual(before);

    // A new source always lands in the caller's own account; buyers cannot make one.
    const secret = `source secret of ${name}`;
    const created = await gql(
      CreateSourceDocument,
      { input: { name: `${name} push`, type: "PUSH", config: {}, secrets: { token: secret } } },
      h,
    );
    if (!isPublisher) {
      expect(errorOf(created).extensions?.code).toBe("FORBIDDEN");
      return;
    }
    // Scanned like a credential: no other account's response may carry it.
    credentials.set(secret, own());
    const row = await db.source.findUniqueOrThrow({
      where: { id: decodeGlobalId(ok(created).createSource.id).id },
    });
    expect(row.accountId).toBe(own());
  });

  it("cannot see, change, send, rotate or delete another account's delivery, nor redeliver its attempts", async () => {
    const h = me().keys[0]!.headers;
    const db = prisma();
    const foreign = await foreignIds(own());
    const deliveries = [...foreign].filter(([, r]) => r.type === "Delivery").map(([id]) => id);
    const attempts = [...foreign].filter(([, r]) => r.type === "DeliveryAttempt").map(([id]) => id);
    expect(deliveries.length).toBeGreaterThanOrEqual(3);
    expect(attempts.length).toBeGreaterThanOrEqual(3);
    const snapshot = () =>
      Promise.all([
        db.delivery.findMany({ orderBy: { id: "asc" } }),
        db.deliveryAttempt.findMany({ orderBy: { id: "asc" } }),
        db.deliveryEvent.count(),
      ]);
    const before = await snapshot();
    for (const id of deliveries) {
      const writes = await Promise.all([
        gql(UpdateDeliveryDocument, { id, input: { config: { url: "https://93.184.215.14/mine" } } }, h),
        gql(DeleteDeliveryDocument, { id }, h),
        gql(PauseDeliveryDocument, { id }, h),
        gql(ResumeDeliveryDocument, { id }, h),
        gql(TriggerDeliveryDocument, { id }, h),
        gql(RotateDeliverySecretDocument, { id, graceSeconds: 60 }, h),
      ]);
      for (const res of writes) expect(errorOf(res).extensions?.code, id).toBe("NOT_FOUND");
      count("delivery writes", writes.length);
    }
    for (const attemptId of attempts) {
      expect(errorOf(await gql(RedeliverDocument, { attemptId }, h)).extensions?.code).toBe("NOT_FOUND");
      count("redeliver");
    }
    expect(await snapshot()).toEqual(before);

    // deliveries(datasetId:) of a dataset others deliver from lists only its own.
    for (const dataset of await db.dataset.findMany({ where: { status: "PUBLISHED" } })) {
      const datasetId = encodeGlobalId("Dataset", dataset.id);
      const listed = ok(await gql(DeliveriesDocument, { first: PAGE, datasetId }, h)).deliveries;
      for (const { node } of listed.edges) expect(deliveries).not.toContain(node.id);
      count("deliveries(datasetId:)");
    }

    // A delivery on another publisher's draft: NOT_FOUND; on a published dataset: in its own account.
    const drafts = await db.dataset.findMany({ where: { status: "DRAFT", accountId: { not: own() } } });
    expect(drafts.length).toBeGreaterThan(0);
    const webhook = (datasetId: string) => ({
      input: { datasetId, kind: "WEBHOOK" as const, config: { url: "https://93.184.215.14/hook" } },
    });
    for (const draft of drafts) {
      const res = await gql(CreateDeliveryDocument, webhook(encodeGlobalId("Dataset", draft.id)), h);
      expect(errorOf(res).extensions?.code).toBe("NOT_FOUND");
      count("createDelivery on a foreign draft");
    }
    const seller = isPublisher ? me() : parties[COUNTERPART[name]];
    const target = await db.dataset.findFirstOrThrow({
      where: { accountId: seller.account.rawAccountId, status: "PUBLISHED" },
    });
    const created = ok(await gql(CreateDeliveryDocument, webhook(encodeGlobalId("Dataset", target.id)), h));
    // Scanned like a credential: no other account's response may carry it.
    credentials.set(created.createDelivery.signingSecret!, own());
    const row = await db.delivery.findUniqueOrThrow({
      where: { id: decodeGlobalId(created.createDelivery.delivery.id).id },
    });
    expect(row.accountId).toBe(own());
  });

  it("sets the low-credit threshold of its own account only", async () => {
    const db = prisma();
    const thresholds = async () =>
      db.account.findMany({
        where: { id: { not: own() } },
        orderBy: { id: "asc" },
        select: { id: true, lowCreditThreshold: true },
      });
    const before = await thresholds();
    const threshold = 1000 + CALLERS.indexOf(name);
    const set = ok(await gql(SetLowCreditThresholdDocument, { threshold }, me().keys[0]!.headers));
    expect(set.setLowCreditThreshold).toMatchObject({
      id: me().account.accountId,
      lowCreditThreshold: threshold,
    });
    count("setLowCreditThreshold");
    expect(await thresholds()).toEqual(before);
    const row = await db.account.findUniqueOrThrow({ where: { id: own() } });
    expect(row.lowCreditThreshold).toBe(BigInt(threshold));
  });

  it("cannot change, run, schedule, stop or delete another account's pipelines, nor sync its sources", async () => {
    const h = me().keys[0]!.headers;
    const db = prisma();
    const foreign = await foreignIds(own());
    const pipelines = [...foreign].filter(([, r]) => r.type === "Pipeline").map(([id]) => id);
    const sources = [...foreign].filter(([, r]) => r.type === "Source").map(([id]) => id);
    expect(pipelines.length).toBeGreaterThan(0);
    const before = {
      pipelines: await db.pipeline.findMany({ orderBy: { id: "asc" } }),
      runs: await db.pipelineRun.findMany({ orderBy: { id: "asc" } }),
    };
    const expected = isPublisher ? "NOT_FOUND" : "FORBIDDEN";
    for (const id of pipelines) {
      const attempts = await Promise.all([
        gql(UpdatePipelineDocument, { id, input: { name: "taken over", schedule: "* * * * *" } }, h),
        gql(RunPipelineDocument, { id }, h),
        gql(StartPipelineDocument, { id }, h),
        gql(StopPipelineDocument, { id }, h),
        gql(DeletePipelineDocument, { id }, h),
      ]);
      for (const res of attempts) expect(errorOf(res).extensions?.code, id).toBe(expected);
      count("pipeline writes", attempts.length);
    }
    for (const id of sources) {
      expect(errorOf(await gql(SyncSourceDocument, { id }, h)).extensions?.code, id).toBe(expected);
      count("source syncs");
    }
    // A pipeline from another account's source, or into another account's dataset, is refused.
    const ownSource = await db.source.findFirst({ where: { accountId: own() } });
    const ownDataset = await db.dataset.findFirst({ where: { accountId: own() } });
    const foreignDataset = [...foreign].find(([, r]) => r.type === "Dataset" && !r.published)?.[0];
    const combos = [
      { sourceId: sources[0]!, datasetId: encodeGlobalId("Dataset", ownDataset?.id ?? NO_SUCH_UUID) },
      { sourceId: encodeGlobalId("Source", ownSource?.id ?? NO_SUCH_UUID), datasetId: foreignDataset! },
    ];
    for (const combo of combos) {
      const res = await gql(CreatePipelineDocument, { input: { ...combo, name: "stolen", steps: [] } }, h);
      expect(errorOf(res).extensions?.code).toBe(expected);
      count("pipeline writes");
    }
    expect(await db.pipeline.findMany({ orderBy: { id: "asc" } })).toEqual(before.pipelines);
    expect(await db.pipelineRun.findMany({ orderBy: { id: "asc" } })).toEqual(before.runs);
  });

  it("cannot top up, buy a hidden dataset, or read another account's usage and sales", async () => {
    const h = me().keys[0]!.headers;
    const db = prisma();
    const balancesBefore = await db.account.findMany({ orderBy: { id: "asc" } });
    const range = {
      from: new Date(Date.now() - 86_400_000).toISOString(),
      to: new Date(Date.now() + 86_400_000).toISOString(),
    };
    for (const other of others()) {
      const topUp = await gql(
        TopUpCreditsDocument,
        { accountId: other.account.accountId, amount: 1, idempotencyKey: `iso-${name}-${other.name}` },
        h,
      );
      expect(errorOf(topUp).extensions?.code).toBe("FORBIDDEN");
      const usage = await gql(
        UsageDocument,
        { ...range, groupBy: "DAY", accountId: other.account.accountId },
        h,
      );
      expect(errorOf(usage).extensions?.code).toBe("NOT_FOUND");
    }
    const hidden = await db.dataset.findMany({
      where: { status: { not: "PUBLISHED" }, accountId: { not: own() } },
    });
    expect(hidden.length).toBeGreaterThan(0);
    for (const d of hidden) {
      const res = await gql(PurchaseDatasetDocument, { datasetId: encodeGlobalId("Dataset", d.id) }, h);
      expect(errorOf(res).extensions?.code).toBe("NOT_FOUND");
    }
    expect(await db.account.findMany({ orderBy: { id: "asc" } })).toEqual(balancesBefore);

    const stats = await gql(SalesStatsDocument, { ...range, groupBy: "DATASET" }, h);
    if (!isPublisher) {
      expect(errorOf(stats).extensions?.code).toBe("FORBIDDEN");
      return;
    }
    const ownSales = await db.sale.findMany({
      where: { sellerAccountId: own() },
      include: { dataset: true },
    });
    expect(
      ok(stats)
        .salesStats.map((row) => row.group)
        .sort(),
    ).toEqual([...new Set(ownSales.map((sale) => sale.dataset.slug))].sort());
  });

  it("cannot follow another account's hidden datasets, pipelines or deliveries live", async () => {
    const foreign = await foreignIds(own());
    const h = me().keys[0]!.headers;
    const refusal = async <TData, TVars>(document: TypedDocumentNode<TData, TVars>, variables: TVars) => {
      const outcome = await recordingSubscribe(document, variables, h);
      expect(outcome, JSON.stringify(variables)).not.toBe("accepted");
      return errorOf(outcome as GraphQLResponse<TData>).extensions?.code;
    };
    const hidden = (type: NodeType) => [...foreign].filter(([, r]) => r.type === type).map(([id]) => id);
    expect(hidden("Dataset").length).toBeGreaterThan(0);
    for (const datasetId of hidden("Dataset")) {
      expect(await refusal(IsoDatasetUpdatedDocument, { datasetId })).toBe("NOT_FOUND");
      count("datasetUpdated");
    }
    expect(hidden("Pipeline").length).toBeGreaterThan(0);
    for (const pipelineId of hidden("Pipeline")) {
      // Buyers may follow no pipeline at all; publishers only their own.
      expect(await refusal(IsoPipelineRunUpdatedDocument, { pipelineId })).toBe(
        isPublisher ? "NOT_FOUND" : "FORBIDDEN",
      );
      count("pipelineRunUpdated");
    }
    const foreignDeliveries = Object.entries(deliveries).filter(([owner]) => owner !== name);
    expect(foreignDeliveries.length).toBeGreaterThan(0);
    for (const [, deliveryId] of foreignDeliveries) {
      expect(await refusal(IsoDeliveryUpdatedDocument, { deliveryId })).toBe("NOT_FOUND");
      count("deliveryUpdated");
    }

    // What it may follow is accepted, so the refusals above are not vacuous.
    const visibleDatasets = idsOf(await ownership(), "Dataset", (r) => visibleTo(r, own()));
    for (const datasetId of visibleDatasets) {
      expect(await recordingSubscribe(IsoDatasetUpdatedDocument, { datasetId }, h)).toBe("accepted");
    }
    if (isPublisher) {
      const pipelines = await prisma().pipeline.findMany({ where: { accountId: own() } });
      expect(pipelines).toHaveLength(1);
      const pipelineId = encodeGlobalId("Pipeline", pipelines[0]!.id);
      expect(await recordingSubscribe(IsoPipelineRunUpdatedDocument, { pipelineId }, h)).toBe("accepted");
    } else {
      const deliveryId = deliveries[name as "B1" | "B2"];
      expect(await recordingSubscribe(IsoDeliveryUpdatedDocument, { deliveryId }, h)).toBe("accepted");
    }
  });

  it("creates, rotates and revokes its own keys, on its own account", async () => {
    const h = me().keys[0]!.headers;
    const created = ok(await gql(IsoCreateApiKeyDocument, { input: { name: "throwaway" } }, h)).createApiKey;
    credentials.set(created.secret, own());
    const rotated = ok(
      await gql(IsoRotateApiKeyDocument, { id: created.apiKey.id, graceSeconds: 0 }, h),
    ).rotateApiKey;
    credentials.set(rotated.secret, own());
    const revoked = ok(await gql(IsoRevokeApiKeyDocument, { id: rotated.apiKey.id }, h)).revokeApiKey;
    expect(revoked.revokedAt).toBeTruthy();
    for (const id of [created.apiKey.id, rotated.apiKey.id]) {
      const row = await prisma().apiKey.findUniqueOrThrow({ where: { id: decodeGlobalId(id).id } });
      expect(row.accountId).toBe(own());
    }
  });

  it("cannot revoke or rotate another account's API key: NOT_FOUND, and the key still works", async () => {
    const foreign = await foreignIds(own());
    const keys = [...foreign].filter(([, r]) => r.type === "ApiKey").map(([id]) => id);
    // Every other account's keys: two each, the admin's, and the throwaway ones made so far.
    expect(keys.length).toBeGreaterThanOrEqual(2 * 5);
    const before = await apiKeySnapshot();
    const h = me().keys[0]!.headers;
    const missing = encodeGlobalId("ApiKey", NO_SUCH_UUID);
    const notFound = errorOf(await gql(IsoRevokeApiKeyDocument, { id: missing }, h));
    expect(notFound.extensions).toEqual({ code: "NOT_FOUND" });
    for (const id of keys) {
      // The same answer as for a key that does not exist: not even existence is revealed.
      expect(errorOf(await gql(IsoRevokeApiKeyDocument, { id }, h))).toMatchObject({
        message: notFound.message,
        extensions: { code: "NOT_FOUND" },
      });
      expect(errorOf(await gql(IsoRotateApiKeyDocument, { id, graceSeconds: 0 }, h))).toMatchObject({
        message: notFound.message,
        extensions: { code: "NOT_FOUND" },
      });
      count("revokeApiKey/rotateApiKey", 2);
    }
    expect(await apiKeySnapshot()).toEqual(before);

    // Every other account's keys still authenticate as their owner.
    for (const other of others()) {
      for (const { headers } of other.keys) {
        const res = await gql(IsoMeDocument, {}, headers);
        if (other.name === "S") {
          // Suspended by the admin in the setup: refused for that, not because a key was revoked.
          expect(errorOf(res)).toMatchObject({
            message: "Account suspended",
            extensions: { code: "FORBIDDEN" },
          });
        } else {
          expect(ok(res).me.account.id).toBe(other.account.accountId);
        }
      }
    }
    expect(ok(await gql(IsoMeDocument, {}, admin.headers)).me.account.id).toBe(admin.accountId);
  });

  it("gets FORBIDDEN from every admin mutation, on every account, and nothing changes", async () => {
    const before = await accountSnapshot();
    const targets = [
      ...Object.values(parties).map((p) => p.account.accountId),
      admin.accountId,
      encodeGlobalId("Account", NO_SUCH_UUID),
    ];
    for (const h of Object.values(credentialsOf())) {
      for (const accountId of targets) {
        const attempts = [
          await gql(IsoSetAccountPlanDocument, { accountId, plan: "ENTERPRISE", rateLimitPerMinute: 1 }, h),
          await gql(IsoSuspendAccountDocument, { accountId }, h),
          await gql(IsoReinstateAccountDocument, { accountId }, h),
        ];
        for (const res of attempts) {
          expect(errorOf(res)).toEqual({
            message: "Requires the ADMIN role",
            locations: expect.any(Array),
            path: [expect.any(String)],
            extensions: { code: "FORBIDDEN", requiredRoles: ["ADMIN"] },
          });
        }
        count("setAccountPlan/suspendAccount/reinstateAccount", 3);
      }
    }
    expect(await accountSnapshot()).toEqual(before);
    expect(
      (await prisma().account.findUniqueOrThrow({ where: { id: parties.S.account.rawAccountId } })).status,
    ).toBe("SUSPENDED");
  });

  it("cannot log in as another account with a wrong password", async () => {
    const db = prisma();
    const unknown = errorOf(
      await gql(IsoLoginDocument, { email: "nobody@example.com", password: me().password }),
    );
    expect(unknown.extensions).toEqual({ code: "UNAUTHENTICATED" });
    for (const email of [...others().map((p) => p.account.email), admin.email]) {
      const before = await db.user.findUniqueOrThrow({ where: { email } });
      for (const password of [me().password, `${me().password}!`]) {
        const res = await gql(IsoLoginDocument, { email, password }, me().keys[0]!.headers);
        // The same answer as for an unknown email.
        expect(errorOf(res)).toMatchObject({
          message: unknown.message,
          extensions: { code: "UNAUTHENTICATED" },
        });
        count("login");
      }
      const after = await db.user.findUniqueOrThrow({ where: { email } });
      expect(after.lastLoginAt).toEqual(before.lastLoginAt);
    }
  });

  it("cannot sign up into an existing account: the same email is a CONFLICT", async () => {
    const db = prisma();
    const accountsBefore = await db.account.count();
    const usersBefore = await db.user.findMany({ orderBy: { id: "asc" } });
    for (const other of [...Object.values(parties).map((p) => p.account), admin]) {
      for (const email of [other.email, `  ${other.email.toUpperCase()} `]) {
        for (const headers of [undefined, me().keys[0]!.headers]) {
          const res = await gql(
            IsoSignupDocument,
            { input: { name: name, email, password: "another password entirely", role: "PUBLISHER" } },
            headers,
          );
          expect(errorOf(res).extensions?.code).toBe("CONFLICT");
          count("signup (existing email)");
        }
      }
    }
    expect(await db.account.count()).toBe(accountsBefore);
    expect(await db.user.findMany({ orderBy: { id: "asc" } })).toEqual(usersBefore);
  });

  it("signs up a NEW account even with its own name and credentials attached", async () => {
    const db = prisma();
    const email = `new-${name.toLowerCase()}-${Date.now()}@example.com`;
    const res = ok(
      await gql(
        IsoSignupDocument,
        { input: { name, email, password: "a brand new password", role: me().role } },
        me().keys[0]!.headers,
      ),
    ).signup;
    const newAccountId = decodeGlobalId(res.account.id).id;
    credentials.set(res.apiKeySecret, newAccountId);
    count("signup (new account)");
    expect(newAccountId).not.toBe(own());
    for (const p of [...Object.values(parties).map((p) => p.account), admin]) {
      expect(res.account.id).not.toBe(p.accountId);
    }
    expect(res.account).toMatchObject({ name, creditBalance: 100, plan: { code: "FREE" } });
    const user = await db.user.findUniqueOrThrow({ where: { email } });
    expect(user.accountId).toBe(newAccountId);
    expect(await db.user.count({ where: { accountId: own() } })).toBe(1);
    // The new account sees its own rows only, none of the account whose key was sent.
    const h = { "x-api-key": res.apiKeySecret };
    expect(
      ok(await gql(IsoAccountsDocument, { first: PAGE }, h)).accounts.edges.map((e) => e.node.id),
    ).toEqual([res.account.id]);
    expect(
      ok(await gql(IsoCreditTransactionsDocument, { first: PAGE }, h)).creditTransactions.edges.map(
        (e) => e.node.kind,
      ),
    ).toEqual(["TOP_UP"]);
    expect(ok(await gql(IsoSalesDocument, { first: PAGE }, h)).sales.edges).toEqual([]);
  });
});

describe("the admin, afterwards", () => {
  it("reinstates the suspended account, whose keys work again", async () => {
    const { S } = parties;
    const back = ok(
      await gql(IsoReinstateAccountDocument, { accountId: S.account.accountId }, admin.headers),
    );
    expect(back.reinstateAccount.status).toBe("ACTIVE");
    for (const { headers } of S.keys) {
      expect(ok(await gql(IsoMeDocument, {}, headers)).me.account.id).toBe(S.account.accountId);
    }
  });
});

describe("every response of this file", () => {
  it("sent every root field of the schema at least once", () => {
    expect(sorted(sentRootFields)).toEqual(
      sorted([
        ...COVERED.Query.map((f) => `Query.${f}`),
        ...COVERED.Mutation.map((f) => `Mutation.${f}`),
        ...COVERED.Subscription.map((f) => `Subscription.${f}`),
      ]),
    );
  });

  it("never carried anything of another account", async () => {
    const rows = await ownership();
    const db = prisma();
    const users = await db.user.findMany();
    const keys = await db.apiKey.findMany();
    const leaks: string[] = [];
    for (const exchange of exchanges) {
      const viewer = exchange.owner;
      const isAdmin = viewer === admin.rawAccountId;
      // Secrets and session tokens of anyone else: never, not even to the admin.
      const forbidden: [string, string][] = [...credentials]
        .filter(([, owner]) => owner !== viewer)
        .map(([secret, owner]) => [secret, `a credential of account ${owner}`]);
      if (!isAdmin) {
        for (const u of users)
          if (u.accountId !== viewer) forbidden.push([u.email, `the email of ${u.accountId}`]);
        for (const k of keys)
          if (k.accountId !== viewer) forbidden.push([k.prefix, `a key prefix of ${k.accountId}`]);
        for (const [id, row] of rows) {
          if (!visibleTo(row, viewer))
            forbidden.push([id, `${row.type} ${row.rawId}`], [row.rawId, `${row.type} ${row.rawId}`]);
        }
      }
      for (const [token, what] of forbidden) {
        // A response may repeat what its own request sent (e.g. a variable); nothing else.
        if (exchange.response.includes(token) && !exchange.request.includes(token)) {
          leaks.push(`${exchange.operation} for ${viewer ?? "anonymous"} contained ${what}`);
        }
      }
      // Every object returned, even one whose id the request sent, is the viewer's to see.
      if (!isAdmin) {
        const walk = (value: unknown): void => {
          if (Array.isArray(value)) return value.forEach(walk);
          if (value === null || typeof value !== "object") return;
          const id = (value as { id?: unknown }).id;
          if (typeof id === "string") {
            const row = rows.get(id);
            if (!row)
              leaks.push(`${exchange.operation} for ${viewer ?? "anonymous"} returned unknown id ${id}`);
            else if (!visibleTo(row, viewer))
              leaks.push(
                `${exchange.operation} for ${viewer ?? "anonymous"} returned ${row.type} ${row.rawId}`,
              );
          }
          Object.values(value).forEach(walk);
        };
        walk((JSON.parse(exchange.response) as { data?: unknown }).data);
      }
    }
    expect(leaks).toEqual([]);
    expect(exchanges.length).toBeGreaterThan(500);
    console.log(
      `isolation: ${exchanges.length} responses scanned; cross-account probes: ${JSON.stringify(probes)}`,
    );
  });
});
