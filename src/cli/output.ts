/**
 * The process's stdout and stderr behind an interface, so commands can be
 * tested by capturing what they print. platform/output.ts implements it.
 * @module
 */

/** Where a command's text goes. */
export interface Output {
  /** Writes text to stdout as is (add your own newline). */
  out(text: string): void;
  /** Writes text to stderr as is. */
  err(text: string): void;
}
