/**
 * The file operations the config loader and the reverse session need,
 * behind a small interface, so they can be tested with `createFakeFs()`
 * from tests/_fakes. platform/fs.ts implements it.
 * @module
 */

/** Owner and mode of a file. */
export interface FileInfo {
  readonly uid: number;
  readonly mode: number;
}

/** The file operations components need. */
export interface Fs {
  /**
   * Reads a whole UTF-8 file. Throws `Deno.errors.NotFound` / `PermissionDenied` like Deno does,
   * and InvalidUtf8Error where Deno would silently replace bytes.
   */
  readTextFile(path: string): Promise<string>;
  /** Owner and mode, following symlinks. Throws like Deno does. */
  stat(path: string): Promise<FileInfo>;
}
