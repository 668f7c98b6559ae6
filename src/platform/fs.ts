/**
 * File system access behind a small interface, so components can be tested
 * with `createFakeFs()` from tests/_fakes.
 * @module
 */

/** The file operations components need. */
export interface Fs {
  /** Reads a whole UTF-8 file. Throws `Deno.errors.NotFound` / `PermissionDenied` like Deno does. */
  readTextFile(path: string): Promise<string>;
}

/** The real file system. */
export const realFs: Fs = {
  readTextFile: (path) => Deno.readTextFile(path),
};
