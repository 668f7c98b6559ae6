/**
 * The command policy: which requests a client may have run upstream.
 * @module
 */

import type { CommandPattern } from "../config/mod.ts";
import { checkProgramOptions } from "./options/mod.ts";
import { scanCommand, splitShellWords } from "./shell_words.ts";

/** What the client asked sshd to run. */
export type ChannelRequest =
  | { readonly kind: "exec"; readonly command: string }
  | { readonly kind: "subsystem"; readonly name: string }
  | { readonly kind: "shell" };

/** The policy's answer. */
export type PolicyVerdict = { readonly allowed: true } | {
  readonly allowed: false;
  readonly reason: string;
};

/**
 * Decides whether the request is allowed by the patterns (order does not
 * matter); a known program must also pass its option allow-list, and every
 * command must read as the same words whichever login shell runs it
 * upstream (sh, bash, dash, zsh, tcsh, csh). `*` allows anything.
 */
export function checkCommand(
  patterns: readonly CommandPattern[],
  request: ChannelRequest,
): PolicyVerdict {
  if (patterns.some((p) => p.kind === "any")) return { allowed: true };
  switch (request.kind) {
    case "shell":
      return { allowed: false, reason: "interactive shells are not allowed" };
    case "subsystem":
      return patterns.some((p) => p.kind === "subsystem" && p.name === request.name)
        ? { allowed: true }
        : { allowed: false, reason: `subsystem "${request.name}" is not allowed` };
    case "exec": {
      const { split, shellsDiffer } = scanCommand(request.command);
      if (!split.ok) return { allowed: false, reason: `command refused: ${split.reason}` };
      const { words } = split;
      const program = words[0];
      if (program === undefined) {
        return { allowed: false, reason: "interactive shells are not allowed" };
      }
      if (!matchesWords(patterns, words)) {
        return { allowed: false, reason: `command "${program}" is not allowed` };
      }
      // The program's own rules first, for their more specific reasons; then what the internal
      // account's login shell (sh, bash, dash, zsh, tcsh or csh) would read as other words.
      const refused = checkProgramOptions(words, split.mayBecomeOptions) ?? shellsDiffer;
      return refused === undefined
        ? { allowed: true }
        : { allowed: false, reason: `command refused: ${refused}` };
    }
  }
}

function matchesWords(patterns: readonly CommandPattern[], words: readonly string[]): boolean {
  return patterns.some((p) =>
    p.kind === "exec" && p.argv.length <= words.length && p.argv.every((w, i) => words[i] === w)
  );
}

/** True when a command string's leading words match one of the `exec` patterns. */
export function matchesCommand(patterns: readonly CommandPattern[], command: string): boolean {
  const split = splitShellWords(command);
  return split.ok && matchesWords(patterns, split.words);
}
