/**
 * Paths a root process may trust: every directory from `/` down is root's
 * and writable by root only, or sticky (where an entry root owns cannot be
 * renamed or removed by anyone else). The privileged config reader and
 * root's own log file both stand on it.
 * @module
 */

import { UserError } from "../errors.ts";
import { modeText, rootDirectoryProblem } from "../log/files.ts";

/** A path a root process must not trust: someone else could change what it holds. */
export class UntrustedPathError extends UserError {}

/**
 * Every directory from `/` down to `dir` is root's and writable by root
 * only (a sticky directory such as /tmp is fine: its root-owned entries
 * cannot be replaced).
 * @throws {UntrustedPathError}
 */
export function checkRootDirectories(dir: string): void {
  const parts = dir.split("/").filter((p) => p !== "");
  for (let i = 0; i <= parts.length; i++) {
    const path = "/" + parts.slice(0, i).join("/");
    const info = Deno.statSync(path);
    const mode = info.mode ?? 0;
    if (rootDirectoryProblem({ isDirectory: info.isDirectory, uid: info.uid ?? -1, mode })) {
      throw new UntrustedPathError(
        `directory "${path}" must be owned by root and writable only by root (uid ${info.uid}, mode ${
          modeText(mode)
        })`,
      );
    }
  }
}
