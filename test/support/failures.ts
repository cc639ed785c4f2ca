import { expect } from "vitest";
import { AppError } from "../../src/errors.js";

/** The AppError `run` rejects with; fails the test when it resolves or throws anything else. */
export async function failure(run: () => Promise<unknown>): Promise<AppError> {
  const error = await run().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AppError);
  return error as AppError;
}
