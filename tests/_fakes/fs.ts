/**
 * An in-memory `Fs`: paths map to text, or to the error reading them throws.
 * @module
 */

import type { Fs } from "../../src/platform/fs.ts";

/** Builds a fake file system from a map of path → content or error. */
export function createFakeFs(files: Record<string, string | Error>): Fs {
  return {
    readTextFile(path: string): Promise<string> {
      const entry = files[path];
      if (entry === undefined) {
        return Promise.reject(new Deno.errors.NotFound(`No such file: ${path}`));
      }
      if (entry instanceof Error) return Promise.reject(entry);
      return Promise.resolve(entry);
    },
  };
}
