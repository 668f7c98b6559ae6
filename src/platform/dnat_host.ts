/**
 * Host facts and primitives of the DNAT code: the forwarding sysctl, conntrack
 * accounting, the root-only registry directory with its lock, and the
 * config a privileged call may trust.
 * @module
 */

import { modeText } from "../log/files.ts";
import { checkRootDirectories, UntrustedPathError } from "./root_paths.ts";
import { strictText } from "../config/text.ts";
import type { Fs } from "../config/fs.ts";
import type { CommandRunner } from "../process/runner.ts";
import { type ProcReader, readProcText } from "../dnat/procfs.ts";
import type { RegistryStore } from "../dnat/deps.ts";
import { emptyRegistry, registryReader, serializeRegistry } from "../dnat/registry.ts";

/**
 * net.ipv4.ip_forward / net.ipv6.conf.all.forwarding of this network namespace, asked at every
 * install: its /proc/sys file through `proc` (libc in the DNAT service; Deno itself opens
 * /proc/sys only with every permission, and a sysctl process per install starved the service in
 * a burst), sysctl(8) where that file cannot be read.
 */
export async function forwardingEnabled(
  proc: ProcReader,
  runner: CommandRunner,
  family: 4 | 6,
): Promise<boolean> {
  const key = family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
  const text = await readProcText(proc, `/proc/sys/${key.replaceAll(".", "/")}`);
  if (text !== undefined) return text.trim() === "1";
  const result = await runner.run("sysctl", ["-n", key]);
  return result.code === 0 && result.stdout.trim() === "1";
}

/** Turns on conntrack byte counters; true when they were off. */
export async function enableAccounting(runner: CommandRunner): Promise<boolean> {
  const key = "net.netfilter.nf_conntrack_acct";
  const now = await runner.run("sysctl", ["-n", key]);
  if (now.code === 0 && now.stdout.trim() === "1") return false;
  const set = await runner.run("sysctl", ["-qw", `${key}=1`]);
  if (set.code !== 0) throw new Error(`sysctl -w ${key}=1 failed: ${set.stderr.trim()}`);
  return true;
}

/**
 * Reads a config a privileged call may trust: an absolute path to a regular
 * file (not a symbolic link), owned by root and writable only by root, in
 * root-only directories, checked on the file actually opened. Messages
 * follow `Cannot load config "PATH": `, so they do not repeat the path.
 * @throws {UntrustedPathError}
 */
export async function readTrustedFile(path: string): Promise<string> {
  if (!path.startsWith("/")) {
    throw new UntrustedPathError("the path must be absolute");
  }
  checkRootDirectories(path.replace(/\/[^/]*$/, "") || "/");
  const link = Deno.lstatSync(path);
  if (link.isSymlink || !link.isFile) {
    throw new UntrustedPathError(
      "is a symbolic link or not a regular file; a privileged call reads only a regular file",
    );
  }
  using file = await Deno.open(path, { read: true });
  const opened = await file.stat();
  if (opened.ino !== link.ino || opened.dev !== link.dev) {
    throw new UntrustedPathError("was replaced while it was being opened");
  }
  if (opened.uid !== 0 || ((opened.mode ?? 0) & 0o022) !== 0) {
    throw new UntrustedPathError(
      `must be owned by root and writable only by root (uid ${opened.uid}, mode ${
        modeText(opened.mode ?? 0)
      })`,
    );
  }
  return strictText(new Uint8Array(await new Response(file.readable).arrayBuffer()));
}

/** An `Fs` whose reads are `readTrustedFile`, for the config of a privileged call. */
export const trustedFs: Fs = {
  readTextFile: readTrustedFile,
  stat: async (path) => {
    const info = await Deno.stat(path);
    return { uid: info.uid ?? -1, mode: info.mode ?? 0 };
  },
};

/** The root-only directory inside `<state_directory>` for the DNAT registry and lock. */
export function dnatDirectory(stateDirectory: string): string {
  return `${stateDirectory.replace(/\/+$/, "")}/dnat`;
}

/**
 * Creates, if missing, and checks the root-only DNAT directory: the state
 * directory (root's, not group-writable) and `dnat/` in it (mode 700).
 * @throws {UntrustedPathError}
 */
export async function prepareDnatDirectory(stateDirectory: string): Promise<string> {
  if (!stateDirectory.startsWith("/")) {
    throw new UntrustedPathError(`State directory "${stateDirectory}" must be absolute`);
  }
  await Deno.mkdir(stateDirectory, { recursive: true, mode: 0o755 });
  try {
    checkRootDirectories(stateDirectory);
  } catch (error) {
    if (!(error instanceof UntrustedPathError)) throw error;
    throw new UntrustedPathError(
      `State directory "${stateDirectory}" is not safe for DNAT state (only root may write where it lives): ${error.message}; chmod 755 ${stateDirectory} (sessions share ${stateDirectory}/balancer instead)`,
    );
  }
  const dir = dnatDirectory(stateDirectory);
  await Deno.mkdir(dir, { mode: 0o700 }).catch((error) => {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  });
  const info = Deno.lstatSync(dir);
  if (!info.isDirectory || info.uid !== 0 || ((info.mode ?? 0) & 0o077) !== 0) {
    throw new UntrustedPathError(
      `"${dir}" must be a directory owned by root with mode 700 (uid ${info.uid}, mode ${
        modeText(info.mode ?? 0)
      })`,
    );
  }
  return dir;
}

/** The registry file and lock in a prepared DNAT directory. */
export function registryStore(
  dir: string,
  warn: (message: string) => void,
): RegistryStore {
  const path = `${dir}/sessions.json`;
  const parse = registryReader();
  let queue: Promise<void> = Promise.resolve();
  return {
    lock<T>(fn: () => Promise<T>): Promise<T> {
      // One flock at a time per process: each waiting flock holds a thread of the runtime's
      // blocking pool, and a thousand sessions ending at once would take them all, starving
      // the very work the lock holder needs.
      const turn = queue.then(async () => {
        using file = await Deno.open(`${dir}/lock`, {
          read: true,
          write: true,
          create: true,
          mode: 0o600,
        });
        await file.lock(true);
        return await fn();
      });
      queue = turn.then(() => {}, () => {});
      return turn;
    },
    async read() {
      let stored: Uint8Array;
      try {
        stored = await Deno.readFile(path);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) return emptyRegistry();
        throw error;
      }
      const { registry, dropped } = parse(stored);
      if (dropped) warn(`Ignored ${dropped} unreadable entries of the DNAT registry ${path}`);
      return registry;
    },
    async write(registry) {
      const temp = `${path}.${Deno.pid}.tmp`;
      await Deno.writeTextFile(temp, serializeRegistry(registry), { mode: 0o600 });
      await Deno.rename(temp, path);
    },
    async stamp() {
      // Every write renames a new file into place: its inode changes even within one mtime tick.
      const info = await Deno.stat(path).catch(() => undefined);
      return info ? `${info.ino}:${info.mtime?.getTime()}:${info.size}` : "none";
    },
  };
}

/**
 * Records that the DNAT service is alive: `<dir>/service.json` with its pid,
 * the time, where sessions register, and what else `check system` shows.
 */
export async function writeHeartbeat(
  dir: string,
  now: number,
  status: Record<string, unknown>,
): Promise<void> {
  const temp = `${dir}/service.json.tmp`;
  const { rss, heapUsed, heapTotal, external } = Deno.memoryUsage();
  const mib = (n: number) => Math.round(n / 104857.6) / 10;
  const memory = {
    rss: mib(rss),
    heap_used: mib(heapUsed),
    heap_total: mib(heapTotal),
    external: mib(external),
  };
  const beat = { pid: Deno.pid, updated: now, ...status, memory_mib: memory };
  await Deno.writeTextFile(temp, JSON.stringify(beat) + "\n", { mode: 0o644 });
  await Deno.rename(temp, `${dir}/service.json`);
}
