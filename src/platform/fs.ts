/**
 * File system access behind a small interface, so components can be tested
 * with `createFakeFs()` from tests/_fakes.
 * @module
 */

import { strictText } from "../config/text.ts";

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

/** The real file system. */
export const realFs: Fs = {
  readTextFile: async (path) => strictText(await Deno.readFile(path)),
  stat: async (path) => {
    const info = await Deno.stat(path);
    return { uid: info.uid ?? -1, mode: info.mode ?? 0 };
  },
};
