/**
 * The process's stdout and stderr behind an interface, so commands can be
 * tested by capturing what they print.
 * @module
 */

/** Where a command's text goes. */
export interface Output {
  /** Writes text to stdout as is (add your own newline). */
  out(text: string): void;
  /** Writes text to stderr as is. */
  err(text: string): void;
}

const encoder = new TextEncoder();

function writeAll(file: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  while (bytes.length > 0) bytes = bytes.subarray(file.writeSync(bytes));
}

/** The real stdout and stderr. */
export const realOutput: Output = {
  out: (text) => writeAll(Deno.stdout, text),
  err: (text) => writeAll(Deno.stderr, text),
};
