/**
 * The one place an error becomes output: an expected one (`UserError`) is
 * its one line on stderr and its exit status; anything else is a bug.
 * @module
 */

import { UserError } from "../errors.ts";
import type { Output } from "./output.ts";

/** Prints an expected error and returns its exit status; undefined for a bug. */
export function reportError(error: unknown, output: Output): number | undefined {
  if (!(error instanceof UserError)) return undefined;
  output.err(`xferproxy: ${error.userMessage}\n`);
  return error.exitCode;
}
