// A real OpenSSH sshd for the SFTP tests: its own config, host key and pid file in a temp folder,
// listening on a free loopback port, serving only internal-sftp. scripts/services.sh installs the
// package; this starts and stops one server per test file, so files run in parallel.
//
// sshd needs root (privilege separation, switching to the login user). The login user is shared
// by every test file and run, so creating it and setting its password are idempotent.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { access, chmod, chown, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { createServer, connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

export const SFTP_TEST_USER = "datahus-sftp";
export const SFTP_TEST_PASSWORD = "sftp-test-pw-6f1d"; // only ever valid on loopback test servers

export interface TestSshd {
  host: string;
  port: number;
  username: string;
  password: string;
  /** OpenSSH-format private key authorised for `username`. */
  privateKey: string;
  /** The same key encrypted with `passphrase`. */
  encryptedPrivateKey: string;
  passphrase: string;
  /** `SHA256:…` fingerprint of the server's host key, as `ssh-keygen -l` prints it. */
  hostKeyFingerprint: string;
  /** A folder owned by the user, private to this server: put test files under it. */
  root: string;
  /** Writes a file under `root` (path relative to it), owned by the login user. */
  put(relativePath: string, content: string | Buffer, mtime?: Date): Promise<string>;
  stop(): Promise<void>;
}

const SEARCH_PATH = ["/usr/sbin", "/usr/local/sbin", "/sbin", ...(process.env.PATH ?? "").split(":")];

async function findSshd(): Promise<string> {
  for (const dir of SEARCH_PATH) {
    const candidate = join(dir, "sshd");
    try {
      await access(candidate);
      return candidate; // sshd refuses to re-exec unless started by its absolute path
    } catch {
      // keep looking
    }
  }
  throw new Error("sshd is not installed: run scripts/services.sh (it installs openssh-server)");
}

/** Retries commands that lock /etc/passwd, which parallel test files may hold for a moment. */
async function withPasswdLock(command: string, args: string[], input?: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      if (input === undefined) {
        await run(command, args);
      } else {
        await new Promise<void>((resolve, reject) => {
          const child = spawn(command, args, { stdio: ["pipe", "ignore", "pipe"] });
          let stderr = "";
          child.stderr.on("data", (c: Buffer) => (stderr += c.toString()));
          child.on("error", reject);
          child.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${command}: ${stderr}`))));
          child.stdin.end(input);
        });
      }
      return;
    } catch (error) {
      if (attempt >= 20) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
    }
  }
}

async function ensureUser(): Promise<{ uid: number; gid: number }> {
  const ids = async () => {
    const { stdout: uid } = await run("id", ["-u", SFTP_TEST_USER]);
    const { stdout: gid } = await run("id", ["-g", SFTP_TEST_USER]);
    return { uid: Number(uid.trim()), gid: Number(gid.trim()) };
  };
  try {
    await ids();
  } catch {
    // No home directory and no shell: the account only ever serves SFTP on test servers.
    await withPasswdLock("useradd", [
      "--no-create-home",
      "--shell",
      "/usr/sbin/nologin",
      SFTP_TEST_USER,
    ]).catch(async (error: unknown) => {
      await ids().catch(() => Promise.reject(error as Error)); // created meanwhile by another file
    });
  }
  // A useradd account has a locked password, and sshd then refuses even key logins: set one.
  await withPasswdLock("chpasswd", [], `${SFTP_TEST_USER}:${SFTP_TEST_PASSWORD}\n`);
  return ids();
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Resolves once the server sends its SSH banner. */
async function waitForBanner(port: number, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`sshd exited (${child.exitCode}): ${log()}`);
    const banner = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.setTimeout(1_000, () => (socket.destroy(), resolve(false)));
      socket.once("data", (data) => (socket.destroy(), resolve(data.toString().startsWith("SSH-"))));
      socket.once("error", () => resolve(false));
    });
    if (banner) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`sshd did not answer on 127.0.0.1:${port} within 10 s: ${log()}`);
}

export async function startSshd(): Promise<TestSshd> {
  if (process.getuid?.() !== 0) throw new Error("the SFTP tests start sshd, which needs root");
  const sshd = await findSshd();
  const { uid, gid } = await ensureUser();
  await mkdir("/run/sshd", { recursive: true, mode: 0o755 });

  const dir = await mkdtemp(join(tmpdir(), "datahus-sshd-"));
  await chmod(dir, 0o755);
  const hostKey = join(dir, "host_ed25519");
  const userKey = join(dir, "user_ed25519");
  const encryptedKey = join(dir, "user_encrypted");
  const passphrase = "key-passphrase-1";
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", userKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-f", encryptedKey]);
  const authorized = join(dir, "authorized_keys");
  await writeFile(
    authorized,
    (await readFile(`${userKey}.pub`, "utf8")) + (await readFile(`${encryptedKey}.pub`, "utf8")),
  );
  const { stdout: fingerprint } = await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${hostKey}.pub`]);

  const root = join(dir, "files");
  await mkdir(root);
  await chown(root, uid, gid);

  let child: ChildProcess | undefined;
  let port = 0;
  let output = "";
  for (let attempt = 0; attempt < 5 && !child; attempt++) {
    port = await freePort();
    const config = join(dir, "sshd_config");
    await writeFile(
      config,
      [
        `ListenAddress 127.0.0.1`,
        `Port ${port}`,
        `HostKey ${hostKey}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${authorized}`,
        // The key files live under /tmp, which StrictModes would reject as world-writable.
        `StrictModes no`,
        `UsePAM no`,
        `PasswordAuthentication yes`,
        `KbdInteractiveAuthentication no`,
        `PubkeyAuthentication yes`,
        `PermitRootLogin no`,
        `AllowUsers ${SFTP_TEST_USER}`,
        `Subsystem sftp internal-sftp`,
        `ForceCommand internal-sftp`,
        `AllowTcpForwarding no`,
        `X11Forwarding no`,
        `MaxStartups 50`,
        `LogLevel ERROR`,
        "",
      ].join("\n"),
    );
    output = "";
    const started = spawn(sshd, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
    started.stderr!.on("data", (c: Buffer) => (output = (output + c.toString()).slice(-4_000)));
    try {
      await waitForBanner(port, started, () => output);
      child = started;
    } catch (error) {
      started.kill("SIGTERM");
      if (attempt === 4) throw error; // a port taken between freePort and bind: try another
    }
  }

  // A test file that dies without calling stop() must not leave its server running.
  const server = child!;
  const killOnExit = () => server.kill("SIGTERM");
  process.once("exit", killOnExit);

  return {
    host: "127.0.0.1",
    port,
    username: SFTP_TEST_USER,
    password: SFTP_TEST_PASSWORD,
    privateKey: await readFile(userKey, "utf8"),
    encryptedPrivateKey: await readFile(encryptedKey, "utf8"),
    passphrase,
    hostKeyFingerprint: fingerprint.split(" ")[1]!,
    root,
    async put(relativePath, content, mtime) {
      const path = join(root, relativePath);
      for (let d = dirname(path); d.length > root.length; d = dirname(d)) {
        await mkdir(d, { recursive: true });
        await chown(d, uid, gid);
      }
      await writeFile(path, content);
      await chown(path, uid, gid);
      if (mtime) await utimes(path, mtime, mtime);
      return path;
    },
    async stop() {
      process.off("exit", killOnExit);
      if (server.exitCode === null) {
        const exited = new Promise((resolve) => server.once("exit", resolve));
        server.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}
