// Starts client processes from a small process of its own, not from the bench's. Forking a process
// marks every page it has written copy-on-write: the embedded engine, which lives in the bench's
// process with the API, then takes a page fault on each page it writes next, and an export measured
// against a client forked from there paid for it. Relaying 1,000,000 rows of TSV from chDB to curl,
// ClickHouse's threads took 0.55 s of CPU instead of 0.27 and Node's main thread 0.27 s instead of
// 0.06; in records.bench.ts the export cost 0.46-1.57 s of CPU more than its statement read in
// process, against -0.36-0.48 s with the launcher (bench/README, "Export, session 8"). No
// deployed API forks per request.
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";

// The launcher: runs each command it is sent and answers with its output and its time, from just
// before it is started to its exit (the IPC round trip stays out of the figure).
const LAUNCHER = `
import { execFile } from "node:child_process";
process.on("message", ({ id, file, args, env }) => {
  const start = performance.now();
  execFile(file, args, { env: { ...process.env, ...env }, maxBuffer: 1 << 26 }, (error, stdout, stderr) => {
    const seconds = (performance.now() - start) / 1000;
    process.send({ id, stdout, seconds, error: error ? String(error) + " " + stderr : null });
  });
});`;

export interface Launched {
  stdout: string;
  seconds: number;
}

export interface Launcher {
  run(file: string, args: readonly string[], env?: Record<string, string>): Promise<Launched>;
  close(): Promise<void>;
}

interface Answer extends Launched {
  id: number;
  error: string | null;
}

/** Starts the launcher; start it before the bench's process grows, so its own fork is cheap. */
export function startLauncher(): Launcher {
  const child: ChildProcess = spawn(process.execPath, ["--input-type=module", "-e", LAUNCHER], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const pending = new Map<number, { resolve: (r: Launched) => void; reject: (e: Error) => void }>();
  let next = 0;
  child.on("message", (answer: Answer) => {
    const waiting = pending.get(answer.id);
    pending.delete(answer.id);
    if (answer.error) waiting?.reject(new Error(answer.error));
    else waiting?.resolve({ stdout: answer.stdout, seconds: answer.seconds });
  });
  child.on("exit", () => {
    for (const waiting of pending.values()) waiting.reject(new Error("launcher: exited"));
    pending.clear();
  });
  child.unref();
  (child.channel as { unref?: () => void } | undefined)?.unref?.();
  return {
    run(file, args, env = {}) {
      const id = ++next;
      return new Promise((resolve, reject) => {
        pending.set(id, { resolve, reject });
        child.send({ id, file, args, env });
      });
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}
