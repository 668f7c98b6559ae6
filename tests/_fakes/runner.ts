/**
 * A recording `CommandRunner`: every call's program, argv and stdin are kept
 * so tests can assert the exact rule text a backend sent; answers come from
 * a handler (default: success, empty output).
 * @module
 */

import type { CommandResult, CommandRunner } from "../../src/process/runner.ts";

/** One recorded call. */
export interface RecordedCall {
  readonly program: string;
  readonly args: readonly string[];
  readonly stdin?: string;
}

/** A runner that records calls. */
export interface RecordingRunner extends CommandRunner {
  readonly calls: RecordedCall[];
}

/** Creates a recording runner; `answer` decides each call's result. */
export function recordingRunner(
  answer: (call: RecordedCall) => Partial<CommandResult> | Error = () => ({}),
): RecordingRunner {
  const calls: RecordedCall[] = [];
  return {
    calls,
    run(program, args, options = {}) {
      const call = {
        program,
        args,
        ...(options.stdin !== undefined ? { stdin: options.stdin } : {}),
      };
      calls.push(call);
      const result = answer(call);
      if (result instanceof Error) return Promise.reject(result);
      return Promise.resolve({ code: 0, stdout: "", stderr: "", ...result });
    },
  };
}
