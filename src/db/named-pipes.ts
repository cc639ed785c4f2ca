// Named pipes for the embedded engine's outputs (ClickHouse#outputThroughPipe), made ahead a
// batch at a time: Node has no mkfifo, and starting a `mkfifo` process from one the size of a
// process holding chDB took 8-25 ms, a twentieth of a 1,000,000-row Parquet export. Each pipe is
// handed out once and removed by its taker once the engine has it open; the folder (mode 0700,
// under the OS temp folder unless told otherwise) and the pipes not taken go at close.
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/** Pipes made per `mkfifo` run. */
export const PIPE_BATCH = 8;

export class NamedPipes {
  #dir: Promise<string> | null = null;
  #ready: string[] = [];
  #made = 0;
  #making: Promise<void> | null = null;

  constructor(private readonly parent: string) {}

  /** The path of a pipe no one has had before. */
  async take(): Promise<string> {
    for (;;) {
      const path = this.#ready.pop();
      if (path !== undefined) return path;
      this.#making ??= this.#make().finally(() => {
        this.#making = null;
      });
      await this.#making;
    }
  }

  /** Removes the folder with the pipes not taken (those taken are their takers' to remove). */
  async close(): Promise<void> {
    const dir = this.#dir;
    this.#dir = null;
    this.#ready = [];
    if (dir) await rm(await dir, { recursive: true, force: true });
  }

  async #make(): Promise<void> {
    const folder = (this.#dir ??= mkdtemp(join(this.parent, "datahus-pipes-")));
    let dir: string;
    try {
      dir = await folder;
    } catch (error) {
      if (this.#dir === folder) this.#dir = null;
      throw error;
    }
    const paths = Array.from({ length: PIPE_BATCH }, () => join(dir, `pipe-${++this.#made}`));
    await execFileAsync("mkfifo", ["-m", "600", ...paths]);
    if (this.#dir === folder) this.#ready.push(...paths);
  }
}
