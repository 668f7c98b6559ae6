/**
 * Per-program option allow-lists: matching the program is not enough,
 * because `scp -o ProxyCommand=…` or `rsync --daemon --config=…` run any
 * command on the internal server. Programs not listed here are matched by
 * their leading words only, as the administrator wrote them.
 * @module
 */

import { checkAscmd, checkAsperaServer } from "./aspera.ts";
import { checkRsync } from "./rsync.ts";
import { checkScp } from "./scp.ts";

const CHECKS: Readonly<
  Record<string, (program: string, args: readonly string[]) => string | undefined>
> = {
  scp: (_, args) => checkScp(args),
  rsync: (_, args) => checkRsync(args),
  ascp: (_, args) => checkAsperaServer("ascp", args),
  ascp4: (_, args) => checkAsperaServer("ascp4", args),
  async: (_, args) => checkAsperaServer("async", args),
  ascmd: (_, args) => checkAscmd(args),
};

/** True when the program (by base name) has an option allow-list. */
export function hasOptionCheck(program: string): boolean {
  return Object.hasOwn(CHECKS, baseName(program));
}

/**
 * Why the command may not run upstream, or undefined when it may.
 * `mayBecomeOptions`: indexes of words the upstream shell could expand into
 * an option (see splitShellWords).
 */
export function checkProgramOptions(
  words: readonly string[],
  mayBecomeOptions: readonly number[],
): string | undefined {
  const program = words[0];
  if (program === undefined) return undefined;
  const check = CHECKS[baseName(program)];
  if (!check) return undefined;
  const risky = mayBecomeOptions[0];
  if (risky !== undefined) {
    return `"${words[risky]}" could expand into an option upstream (quote it, or start it with ./)`;
  }
  return check(baseName(program), words.slice(1));
}

function baseName(program: string): string {
  return program.slice(program.lastIndexOf("/") + 1);
}
