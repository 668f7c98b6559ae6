/**
 * The one place an error becomes output: an expected one (`UserError`) is
 * its one line on stderr and its exit status; anything else is a bug, said
 * as one line (never an uncaught exception: a daemon's stray-rejection handler
 * would swallow that and exit 0).
 * @module
 */

import { asUserError, ServiceStartError, UserError, withRootHint } from "../errors.ts";
import { EXIT } from "./exit.ts";
import type { Output } from "./output.ts";

/** Prints an expected error and returns its exit status; undefined for a bug. */
export function reportError(error: unknown, output: Output): number | undefined {
  if (!(error instanceof UserError)) return undefined;
  if (error instanceof ServiceStartError && error.shown) return error.exitCode;
  output.err(`xferproxy: ${error.userMessage}\n`);
  return error.exitCode;
}

/**
 * Anything but an expected error is a bug: one line asking for a report, with where it
 * happened (the stack's first frame; a reverse session's stderr reaches its client, so never
 * more). Returns the failure status.
 */
export function reportBug(error: unknown, output: Output): number {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  const frame = error instanceof Error
    ? error.stack?.split("\n").find((line) => /^\s+at /.test(line))?.trim()
    : undefined;
  const where = frame ? ` (${frame})` : "";
  output.err(
    `xferproxy: internal error, please report it with the command line: ${text}${where}\n`,
  );
  return EXIT.failure;
}

/**
 * Whatever ended a command as its one line and exit status: a failed system call worded as a
 * user error (ending with `(run it as root)` when it was denied to someone else), any other
 * unexpected error as a bug.
 */
export function reportFailure(error: unknown, output: Output, byRoot: boolean): number {
  const known = asUserError(error);
  return reportError(byRoot ? known : withRootHint(known), output) ?? reportBug(error, output);
}
