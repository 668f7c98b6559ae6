/**
 * An in-memory `Fs`: paths map to text (owned by root, mode 0644), to a file
 * with its owner and mode, or to the error reading them throws.
 * @module
 */

import type { FileInfo, Fs } from "../../src/config/fs.ts";

/** A fake file with its owner and mode. */
export interface FakeFile extends FileInfo {
  readonly text: string;
}

/** Builds a fake file system from a map of path → content, file or error. */
export function createFakeFs(files: Record<string, string | FakeFile | Error>): Fs {
  const lookup = (path: string): Promise<FakeFile> => {
    const entry = files[path];
    if (entry === undefined) {
      return Promise.reject(new Deno.errors.NotFound(`No such file: ${path}`));
    }
    if (entry instanceof Error) return Promise.reject(entry);
    return Promise.resolve(
      typeof entry === "string" ? { text: entry, uid: 0, mode: 0o100644 } : entry,
    );
  };
  return {
    readTextFile: async (path) => (await lookup(path)).text,
    stat: async (path) => {
      const { uid, mode } = await lookup(path);
      return { uid, mode };
    },
  };
}
