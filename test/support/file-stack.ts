// A stack with a worker whose FILE sources read a folder of the test's own, and a publisher on
// the PRO plan: the set-up of the tests that load files through pipelines (exact-data*,
// wide-dates). close() stops the stack and removes the folder.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Env } from "../../src/config.js";
import { SetAccountPlanDocument } from "../generated/graphql.js";
import { publishing } from "./publishing.js";
import { startStack, type TestAccount, type TestStack } from "./stack.js";

export interface FileStack {
  stack: TestStack;
  /** FILE_SOURCE_ROOT: a source's `path` is relative to it. */
  root: string;
  publisher: TestAccount;
  pub: ReturnType<typeof publishing>;
  close(): Promise<void>;
}

export async function startFileStack(name: string, env: Env = {}): Promise<FileStack> {
  const root = await mkdtemp(join(tmpdir(), `datahus-${name}-`));
  const stack = await startStack({ FILE_SOURCE_ROOT: root, ...env }, { worker: true });
  const publisher = await stack.signup(`${name} publisher`, "PUBLISHER");
  const admin = await stack.admin();
  await stack.graphql(SetAccountPlanDocument, { accountId: publisher.accountId, plan: "PRO" }, admin.headers);
  return {
    stack,
    root,
    publisher,
    pub: publishing(stack, publisher),
    async close() {
      await stack.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}
