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

/**
 * A daemon (`forward`, `dnat serve`) that cannot start working: Aspera Proxy's line, then the
 * reason. `shown` says the daemon's log already wrote that very line to stderr
 * (log/mod.ts's `withLogging`), so main.ts prints nothing more: one line, never two.
 */
export class ServiceStartError extends UserError {
  readonly shown: boolean;
  constructor(reason: string, options?: UserErrorOptions & { shown?: boolean }) {
    super(reason, options);
    this.shown = options?.shown ?? false;
  }

  /** Any failure of a daemon's start as this error; the reason is its one line for the user. */
  static from(error: unknown): ServiceStartError {
    if (error instanceof ServiceStartError) return error;
    const known = asUserError(error);
    const reason = known instanceof UserError ? known.userMessage : errorText(error);
    return new ServiceStartError(reason, { cause: error });
  }

  /** The same error, marked as already written to stderr. */
  asShown(): ServiceStartError {
    return new ServiceStartError(this.message, {
      cause: this.cause,
      exitCode: this.exitCode,
      shown: true,
    });
  }

  override get userMessage(): string {
    return `ERR ${SERVICE_START_FAILED}: ${this.message}`;
  }
}

/** Aspera Proxy's words when its service cannot start (its docs quote them). */
export const SERVICE_START_FAILED = "Failed to initialize proxy service";

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

/**
 * A system call's failure (Deno's `PermissionDenied`, `NotFound`, … or an errno code) as a
 * `UserError` in our wording: `Cannot mkdir "/var/lib/x": permission denied` for Deno's
 * `Permission denied (os error 13): mkdir '/var/lib/x'`. Anything else is returned as it is:
 * a denied Deno permission (`NotCapable`) is a bug in a mode's needs, not the host's doing.
 */
export function asUserError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof UserError) return error;
  if (error instanceof Deno.errors.NotCapable) return error;
  const code = (error as { code?: unknown }).code;
  const system = Object.values(Deno.errors).some((kind) => error instanceof kind) ||
    (typeof code === "string" && /^E[A-Z0-9]+$/.test(code));
  if (!system) return error;
  const match = /^(.*?) \(os error \d+\)(?:: (\w+) '(.*)')?$/s.exec(error.message);
  if (!match) return new UserError(error.message, { cause: error });
  const [, what = "", operation, path] = match;
  const message = operation
    ? `Cannot ${operation} "${path}": ${what.charAt(0).toLowerCase()}${what.slice(1)}`
    : what;
  return new UserError(message, { cause: error });
}

/**
 * A user error that a denied system call caused, run by someone other than root: its line
 * ends with the fix, `(run it as root)`. Anything else, and a daemon's line its log already
 * wrote, is returned as it is.
 */
export function withRootHint(error: unknown): unknown {
  if (!(error instanceof UserError) || !(error.cause instanceof Deno.errors.PermissionDenied)) {
    return error;
  }
  if (error instanceof ServiceStartError && error.shown) return error;
  const message = `${error.message} (run it as root)`;
  const options = { cause: error.cause, exitCode: error.exitCode };
  return error instanceof ServiceStartError
    ? new ServiceStartError(message, options)
    : new UserError(message, options);
}
