/**
 * One error model for every mode. An error meant for the person running
 * xferproxy is a `UserError`: its `userMessage` is one line that says what to
 * fix and `exitCode` is how the process ends. Modes throw them; main.ts prints
 * them in one place (src/cli/report.ts). Anything else is a bug.
 * @module
 */

import { EXIT } from "./cli/exit.ts";

/** Options of a `UserError`: the usual `cause`, and the exit status (default 1). */
export interface UserErrorOptions extends ErrorOptions {
  readonly exitCode?: number;
}

/** An expected failure with a one-line message for the user. */
export class UserError extends Error {
  /** The status the process exits with when this error ends it. */
  readonly exitCode: number;
  constructor(message: string, options?: UserErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = options?.exitCode ?? EXIT.failure;
  }

  /** The line shown to the user (after "xferproxy: "); the message unless a kind words it for them. */
  get userMessage(): string {
    return this.message;
  }
}

/** Something with a debug level: a logtape `Logger`. */
export interface DebugLog {
  debug(message: string, properties?: Record<string, unknown>): void;
}

/**
 * A catch handler for a failure that changes nothing for the caller (best-effort cleanup):
 * one debug line saying what failed, never silence.
 */
export function logIgnored(log: DebugLog, what: string): (error: unknown) => void {
  return (error) => log.debug(`${what}: {error}`, { error: errorText(error) });
}

/** The error's message for a log line, whatever was thrown. */
export function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
