// Switches a developer sets when running tests by hand.

/** UPDATE_OPENAPI=1: rewrite test/generated/openapi.ts from the served document instead of comparing. */
export const updateOpenApiTypes = (): boolean => process.env.UPDATE_OPENAPI === "1";

/** The test process's environment with some variables replaced, for child processes. */
export const childEnv = (overrides: Record<string, string>): NodeJS.ProcessEnv => ({
  ...process.env,
  ...overrides,
});
