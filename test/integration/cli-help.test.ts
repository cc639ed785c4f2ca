// `datahus --help` and `datahus <command> --help`: the help on standard output with exit 0, and
// nothing started or written (serve and worker would never exit, emit-schema would rewrite
// schema.graphql). Unknown commands and options are usage errors (exit 2). Runs the built binary.
import { execFile } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { childEnv } from "../support/flags.js";

const MAIN = new URL("../../dist/src/main.js", import.meta.url).pathname;
const SCHEMA = new URL("../../schema.graphql", import.meta.url).pathname;
const COMMANDS = [
  "serve",
  "worker",
  "migrate",
  "seed",
  "create-admin",
  "emit-schema",
  "upload",
  "follow",
  "export",
];

/** Runs the binary; every case starts at once (each start loads the whole app's modules). */
function datahus(...args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  // Unreachable stores: a command that ignored --help and started would fail or hang, not pass.
  const env = childEnv({ DATABASE_URL: "postgresql://nobody@127.0.0.1:1/none", PORT: "1" });
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [MAIN, ...args],
      { encoding: "utf8", timeout: 90_000, env },
      (error, stdout, stderr) => {
        const status = error ? (typeof error.code === "number" ? error.code : null) : 0;
        resolve({ status, stdout, stderr });
      },
    );
  });
}

describe("datahus --help", () => {
  it("prints the usage on stdout with exit 0", { timeout: 120_000 }, async () => {
    const runs = await Promise.all([["--help"], ["-h"], ["help"], []].map((args) => datahus(...args)));
    for (const res of runs) {
      expect(res.status).toBe(0);
      expect(res.stdout).toMatch(/^usage: datahus <command>/);
      expect(res.stderr).toBe("");
    }
  });

  it("describes every command without running it", async () => {
    const before = { text: readFileSync(SCHEMA, "utf8"), mtime: statSync(SCHEMA).mtimeMs };
    const cases = COMMANDS.map((command, i) => [command, i % 2 ? "-h" : "--help"] as const);
    const runs = await Promise.all(cases.map(([command, flag]) => datahus(command, flag)));
    for (const [i, [command, flag]] of cases.entries()) {
      const res = runs[i]!;
      expect(res.status, `${command} ${flag}: ${res.stderr}`).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`^usage: datahus ${command}`));
      expect(res.stderr).toBe("");
    }
    expect(statSync(SCHEMA).mtimeMs).toBe(before.mtime);
    expect(readFileSync(SCHEMA, "utf8")).toBe(before.text);
  }, 180_000);

  it("refuses unknown commands and options with exit 2 on stderr", { timeout: 120_000 }, async () => {
    const command = await datahus("serv");
    expect(command.status).toBe(2);
    expect(command.stdout).toBe("");
    expect(command.stderr).toMatch(/unknown command "serv"/);
    const mtime = statSync(SCHEMA).mtimeMs;
    const option = await datahus("emit-schema", "--chek");
    expect(option.status).toBe(2);
    expect(option.stderr).toMatch(/unknown option "--chek"/);
    expect(statSync(SCHEMA).mtimeMs).toBe(mtime);
  });
});
