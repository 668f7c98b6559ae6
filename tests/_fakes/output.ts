/**
 * An `Output` that records what a command printed.
 * @module
 */

import type { Output } from "../../src/cli/output.ts";

/** Captured stdout and stderr text. */
export interface CapturedOutput extends Output {
  readonly stdout: string;
  readonly stderr: string;
}

/** Creates an output that keeps everything in memory. */
export function captureOutput(): CapturedOutput {
  let stdout = "";
  let stderr = "";
  return {
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
  };
}
