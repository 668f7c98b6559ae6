/**
 * Running programs behind a small interface, so the DNAT backends can be
 * tested with a recording fake (tests/_fakes/runner.ts) that sees the exact
 * argv and stdin, like Kubernetes' FakeIPTables. The real runner is in
 * platform/runner.ts.
 * @module
 */

import { UserError } from "../errors.ts";
import { installHint } from "./packages.ts";
/** The outcome of one program run. */
export interface CommandResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs one program: argv, never a shell string. */
export interface CommandRunner {
  run(
    program: string,
    args: readonly string[],
    options?: { stdin?: string },
  ): Promise<CommandResult>;
}

/** A program that could not be started at all: not installed. */
export class CommandNotFoundError extends UserError {
  readonly program: string;
  constructor(program: string, options?: ErrorOptions) {
    super(`${program} is not installed; install it: ${installHint(program)}`, options);
    this.program = program;
  }
}
