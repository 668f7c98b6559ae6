/**
 * The real `CheckHost`: the live system ("/") or a mounted image (--root),
 * read only. Programs run only on the live system, and only those check
 * mode keeps permission for.
 * @module
 */

import { type CheckHost, queryArgv } from "../check/host.ts";
import type { CommandRunner } from "../process/runner.ts";

/** A read-only view of the system under `root`. */
export function checkHost(root: string, runner: CommandRunner): CheckHost {
  const at = (path: string) => (root === "/" ? path : `${root.replace(/\/$/, "")}${path}`);
  return {
    root,
    async readText(path) {
      try {
        return await Deno.readTextFile(at(path));
      } catch {
        return undefined;
      }
    },
    async stat(path) {
      try {
        const info = await Deno.stat(at(path));
        return {
          uid: info.uid ?? -1,
          gid: info.gid ?? -1,
          mode: info.mode ?? 0,
          isDirectory: info.isDirectory,
          isFile: info.isFile,
          nlink: info.nlink ?? 1,
        };
      } catch {
        return undefined;
      }
    },
    async list(dir) {
      const names: string[] = [];
      try {
        for await (const entry of Deno.readDir(at(dir))) names.push(entry.name);
      } catch { /* missing or unreadable */ }
      return names;
    },
    async run(query) {
      if (root !== "/") return undefined;
      const [program, ...args] = queryArgv(query);
      try {
        return await runner.run(program as string, args);
      } catch {
        return undefined;
      }
    },
  };
}
