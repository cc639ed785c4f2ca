// A read interrupted by a crash leaves its credit hold open; the worker's sweep gives it back.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { releaseStaleHoldsJob } from "../../src/credits/credit.jobs.js";
import { AppError } from "../../src/errors.js";
import { createLogger } from "../../src/observability/logger.js";
import { startStack, type TestStack } from "../support/stack.js";

let stack: TestStack;

beforeAll(async () => {
  stack = await startStack();
});

afterAll(async () => {
  await stack?.close();
});

describe("the stale hold sweep", () => {
  it("releases holds older than 15 minutes exactly once, and leaves reads in flight alone", async () => {
    const buyer = await stack.signup("Crashed");
    const { ledger } = stack.app.services.credits;
    const prisma = stack.app.stores.prisma;
    const crashed = await ledger.reserve(buyer.rawAccountId, 30n, {
      reference: "read interrupted by a crash",
    });
    const inFlight = await ledger.reserve(buyer.rawAccountId, 10n, { reference: "read in flight" });
    await prisma.$executeRaw`UPDATE credit_transactions SET created_at = now() - interval '20 minutes' WHERE id = ${crashed.id}::uuid`;
    expect(await ledger.balance(buyer.rawAccountId)).toBe(60n);

    const job = releaseStaleHoldsJob(stack.app.services);
    const log = createLogger({ LOG_LEVEL: "silent" });
    await job.handle({}, { id: "sweep-1", log });
    expect(await ledger.balance(buyer.rawAccountId)).toBe(90n);
    await job.handle({}, { id: "sweep-2", log });
    expect(await ledger.balance(buyer.rawAccountId)).toBe(90n);

    // The read in flight settles as usual; the crashed one can no longer be settled or released.
    await ledger.settle(inFlight, 4n);
    expect(await ledger.balance(buyer.rawAccountId)).toBe(96n);
    await expect(ledger.settle(crashed, 30n)).rejects.toSatisfy(
      (error: unknown) => error instanceof AppError && error.code === "CONFLICT",
    );
    const sum = await prisma.creditTransaction.aggregate({
      where: { accountId: buyer.rawAccountId },
      _sum: { amount: true },
    });
    expect(sum._sum.amount).toBe(96n);
  });
});
