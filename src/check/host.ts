/**
 * What the audit reads: files of the audited system (under --root), file
 * modes, and a few programs' version output. Nothing here writes.
 * @module
 */

/** A file's owner and mode. */
export interface FileInfo {
  readonly uid: number;
  readonly gid: number;
  /** Permission bits and setuid/setgid/sticky. */
  readonly mode: number;
  readonly isDirectory: boolean;
}

/** The audited system. Paths are as seen inside it (absolute). */
export interface CheckHost {
  /** "/" for the live system, or the --root directory. */
  readonly root: string;
  readText(path: string): Promise<string | undefined>;
  stat(path: string): Promise<FileInfo | undefined>;
  list(dir: string): Promise<string[]>;
  /** Runs a read-only program on the live system; undefined under --root or when it cannot run. */
  run(
    program: string,
    args: readonly string[],
  ): Promise<{ code: number; stdout: string; stderr: string } | undefined>;
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
