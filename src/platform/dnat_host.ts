/**
 * Host facts and primitives the DNAT helper needs: owner liveness, the
 * forwarding sysctl, an exclusive lock, and whether a config file can be
 * trusted by a helper started through sudo.
 * @module
 */

import type { CommandRunner } from "./runner.ts";

/**
 * The pids of running xferproxy processes (a reused pid of another program
 * does not keep rules alive). Read with ps(1): Deno only lets a fully
 * privileged process read /proc.
 */
export async function liveXferproxyPids(runner: CommandRunner): Promise<ReadonlySet<number>> {
  const result = await runner.run("ps", ["-e", "-o", "pid=,args="]);
  if (result.code !== 0) throw new Error(`ps failed: ${result.stderr.trim()}`);
  const pids = new Set<number>();
  for (const line of result.stdout.split("\n")) {
    const m = /^\s*(\d+)\s+(.*)$/.exec(line);
    if (m && (m[2] as string).includes("xferproxy")) pids.add(Number(m[1]));
  }
  return pids;
}

/** net.ipv4.ip_forward / net.ipv6.conf.all.forwarding of this network namespace, via sysctl(8). */
export async function forwardingEnabled(runner: CommandRunner, family: 4 | 6): Promise<boolean> {
  const key = family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
  const result = await runner.run("sysctl", ["-n", key]);
  return result.code === 0 && result.stdout.trim() === "1";
}

/** Runs `fn` holding an exclusive flock on `<dir>/dnat.lock` (the directory is created if missing). */
export async function withLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
  using file = await Deno.open(`${dir}/dnat.lock`, {
    read: true,
    write: true,
    create: true,
    mode: 0o600,
  });
  await file.lock(true);
  return await fn();
}

/** A config a sudo-started helper must not trust. */
export class UntrustedConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UntrustedConfigError";
  }
}

/**
 * The helper runs as root on behalf of a user: the config that authorizes
 * destinations must be root's. The file and every directory above it must be
 * owned by root and not writable by group or others (a sticky directory such
 * as /tmp is fine: its root-owned entries cannot be replaced).
 * @throws {UntrustedConfigError}
 */
export function checkRootOwned(path: string): void {
  const file = Deno.lstatSync(path);
  if (!file.isFile) throw new UntrustedConfigError(`Config "${path}" is not a regular file`);
  if (file.uid !== 0 || ((file.mode ?? 0) & 0o022) !== 0) {
    throw new UntrustedConfigError(
      `Config "${path}" must be owned by root and writable only by root`,
    );
  }
  let dir = path.replace(/\/[^/]*$/, "") || "/";
  for (;;) {
    const info = Deno.statSync(dir);
    const mode = info.mode ?? 0;
    const sticky = (mode & 0o1000) !== 0;
    if (info.uid !== 0 || ((mode & 0o022) !== 0 && !sticky)) {
      throw new UntrustedConfigError(
        `Directory "${dir}" above the config must be owned by root and writable only by root`,
      );
    }
    if (dir === "/") break;
    dir = dir.replace(/\/[^/]*$/, "") || "/";
  }
}
