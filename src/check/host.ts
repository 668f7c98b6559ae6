/**
 * What the audit reads: files of the audited system (under --root), file
 * modes, and a few programs' version output. Nothing here writes.
 * @module
 */

import { headArgv } from "../dnat/procfs.ts";

/** A file's owner and mode. */
export interface FileInfo {
  readonly uid: number;
  readonly gid: number;
  /** Permission bits and setuid/setgid/sticky. */
  readonly mode: number;
  readonly isDirectory: boolean;
  /** A regular file; when unknown, anything but a directory counts as one. */
  readonly isFile?: boolean;
  /** Hard links; 1 when unknown. */
  readonly nlink?: number;
}

/** A file mode as `ls -l`'s octal, four digits (0640). */
export function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/** The audited system. Paths are as seen inside it (absolute). */
export interface CheckHost {
  /** "/" for the live system, or the --root directory. */
  readonly root: string;
  readText(path: string): Promise<string | undefined>;
  stat(path: string): Promise<FileInfo | undefined>;
  list(dir: string): Promise<string[]>;
  /** Runs one read-only query on the live system; undefined under --root or when it cannot run. */
  run(query: ReadOnlyQuery): Promise<{ code: number; stdout: string; stderr: string } | undefined>;
}

/**
 * Everything `check` may run: each a fixed command line that reads state and
 * changes nothing. The audit holds permission to run these programs; this
 * union is what keeps their arguments read-only (tests/check/host_test.ts
 * checks every form).
 */
export type ReadOnlyQuery =
  /** `program` is conntrack or a DNAT backend's declared tool, never a config value. */
  | { readonly kind: "version"; readonly program: string }
  | { readonly kind: "ip_forward" }
  | { readonly kind: "iptables_save" }
  | { readonly kind: "proc_stat"; readonly pids: readonly number[] };

/** The programs check runs, for its permission set. */
export const CHECK_PROGRAMS = ["iptables", "iptables-save", "nft", "conntrack", "sysctl", "head"];

/** The one place check's command lines are written. */
export function queryArgv(query: ReadOnlyQuery): readonly string[] {
  switch (query.kind) {
    case "version":
      return [query.program, "--version"];
    case "ip_forward":
      return ["sysctl", "-n", "net.ipv4.ip_forward"];
    case "iptables_save":
      return ["iptables-save"];
    case "proc_stat": {
      const pids = query.pids.filter((p) => Number.isSafeInteger(p) && p > 0);
      return headArgv(["/proc/stat", ...pids.map((p) => `/proc/${p}/stat`)]);
    }
  }
}

/** Texts of the files an sshd `Include` pattern names (a `*` in the last component, or a plain path). */
export async function includeTexts(
  host: CheckHost,
  pattern: string,
  base = "/etc/ssh",
): Promise<string[]> {
  const path = pattern.startsWith("/") ? pattern : `${base}/${pattern}`;
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash) || "/";
  const name = path.slice(slash + 1);
  if (!name.includes("*")) {
    const text = await host.readText(path);
    return text === undefined ? [] : [text];
  }
  const regex = new RegExp(`^${name.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*")}$`);
  const names = (await host.list(dir)).filter((n) => regex.test(n)).sort();
  const texts = await Promise.all(names.map((n) => host.readText(`${dir}/${n}`)));
  return texts.filter((t): t is string => t !== undefined);
}
