/**
 * A small JSON document shared by concurrent processes: every update holds an
 * exclusive flock on a side lock file, and the document is replaced
 * atomically (write to a temporary file, then rename), so a crash never
 * leaves it half-written.
 * @module
 */

import type { SharedJson } from "../balancer/shared_json.ts";
import {
  ensureSharedFile,
  NotRegularFileError,
  readSharedText,
  replaceSharedText,
} from "./shared_files.ts";

/**
 * The shared JSON file `<dir>/<name>.json`, locked through `<dir>/<name>.lock`.
 * The directory is group-writable, so no path there is followed if it is a
 * symlink (see shared_files.ts).
 */
export function openSharedJson(
  dir: string,
  name: string,
  onCorrupt: (path: string, error: Error) => void = () => {},
): SharedJson {
  const path = `${dir}/${name}.json`;
  const lockPath = `${dir}/${name}.lock`;
  return {
    async update(change) {
      using lock = await openLock(lockPath);
      await lock.lock(true);
      const text = readSharedText(path);
      let current: unknown;
      try {
        current = text === undefined ? undefined : JSON.parse(text);
      } catch (error) {
        onCorrupt(path, error as Error); // corrupt: start afresh
      }
      const { value, result } = change(current);
      replaceSharedText(path, JSON.stringify(value));
      return result;
    },
  };
}

/** The lock file, opened read-only (flock needs no more) once it is known to be a regular file. */
async function openLock(path: string): Promise<Deno.FsFile> {
  const inode = ensureSharedFile(path);
  const file = await Deno.open(path, { read: true });
  // Replaced by a symlink between the check and this open: opening read-only changed nothing.
  if ((await file.stat()).ino !== inode) {
    file.close();
    throw new NotRegularFileError(path);
  }
  return file;
}
