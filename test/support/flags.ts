// Switches a developer sets when running tests by hand.

/** UPDATE_OPENAPI=1: rewrite test/generated/openapi.ts from the served document instead of comparing. */
export const updateOpenApiTypes = (): boolean => process.env.UPDATE_OPENAPI === "1";
