import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, configSchema, loadConfig } from "../../src/config.js";

describe("loadConfig", () => {
  it("works on a development machine with no settings at all", () => {
    const config = loadConfig({});
    expect(config.DATABASE_URL).toBe("postgresql://postgres@127.0.0.1:5432/datahus");
    expect(config.GRAPHQL_INTROSPECTION).toBe(true);
    expect(config.CORS_ORIGINS).toEqual([]);
  });

  it("lists every problem at once", () => {
    let error: unknown;
    try {
      loadConfig({ PORT: "70000", DATABASE_URL: "not a url", LOG_LEVEL: "loud", TRUST_PROXY: "maybe" });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join("\n");
    for (const key of ["PORT", "DATABASE_URL", "LOG_LEVEL", "TRUST_PROXY"]) expect(problems).toContain(key);
  });

  it("refuses development secrets in production and turns introspection off", () => {
    expect(() => loadConfig({ NODE_ENV: "production" })).toThrow(/JWT_SECRET[\s\S]*ENCRYPTION_KEY/);
    const config = loadConfig({
      NODE_ENV: "production",
      JWT_SECRET: "x".repeat(40),
      ENCRYPTION_KEY: Buffer.alloc(32, 7).toString("base64"),
    });
    expect(config.GRAPHQL_INTROSPECTION).toBe(false);
  });

  it("parses lists and booleans", () => {
    const config = loadConfig({ CORS_ORIGINS: "https://a.example, https://b.example", TRUST_PROXY: "true" });
    expect(config.CORS_ORIGINS).toEqual(["https://a.example", "https://b.example"]);
    expect(config.TRUST_PROXY).toBe(true);
  });
});

describe(".env.example", () => {
  it("documents exactly the settings the schema has", () => {
    const text = readFileSync(new URL("../../.env.example", import.meta.url), "utf8");
    const documented = text
      .split("\n")
      .filter((line) => /^[A-Z_]+=/.test(line))
      .map((line) => line.split("=")[0]);
    expect(documented.sort()).toEqual(Object.keys(configSchema.shape).sort());
  });
});
