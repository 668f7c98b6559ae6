/**
 * File system access behind a small interface, so components can be tested
 * with `createFakeFs()` from tests/_fakes.
 * @module
 */

/** Owner and mode of a file. */
export interface FileInfo {
  readonly uid: number;
  readonly mode: number;
}

/** The file operations components need. */
export interface Fs {
  /** Reads a whole UTF-8 file. Throws `Deno.errors.NotFound` / `PermissionDenied` like Deno does. */
  readTextFile(path: string): Promise<string>;
  /** Owner and mode, following symlinks. Throws like Deno does. */
  stat(path: string): Promise<FileInfo>;
}

/** The real file system. */
export const realFs: Fs = {
  readTextFile: (path) => Deno.readTextFile(path),
  stat: async (path) => {
    const info = await Deno.stat(path);
    return { uid: info.uid ?? -1, mode: info.mode ?? 0 };
  },
};
