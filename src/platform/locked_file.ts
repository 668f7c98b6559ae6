/**
 * A small JSON document shared by concurrent processes: every update holds an
 * exclusive flock on the document's directory, and the document is replaced
 * atomically (write to a temporary file, then rename), so a crash never
 * leaves it half-written.
 * @module
 */

import type { SharedJson } from "../balancer/shared_json.ts";
import { NotRegularFileError, readSharedText, replaceSharedText } from "./shared_files.ts";

/**
 * The shared JSON file `<dir>/<name>.json`, locked through `<dir>` itself.
 * The directory is group-writable, so no path there is followed if it is a
 * symlink, and nothing in it is opened in a way that could block (see
 * shared_files.ts).
 */
export function openSharedJson(
  dir: string,
  name: string,
  onCorrupt: (path: string, error: Error) => void = () => {},
): SharedJson {
  const path = `${dir}/${name}.json`;
  return {
    async update(change) {
      using lock = await openLock(dir);
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

/**
 * The directory, opened read-only to hold its flock. A lock file in it would be a name any group
 * member can replace, by a FIFO whose open never returns, among others; Deno opens files only
 * blocking. The directory itself lives in root's state directory: nobody else can replace it.
 */
async function openLock(dir: string): Promise<Deno.FsFile> {
  const before = await Deno.stat(dir);
  if (!before.isDirectory) throw new NotRegularFileError(dir, "is not a directory");
  const file = await Deno.open(dir, { read: true });
  const opened = await file.stat();
  if (!opened.isDirectory || opened.ino !== before.ino || opened.dev !== before.dev) {
    file.close();
    throw new NotRegularFileError(dir, "was replaced while it was being opened");
  }
  return file;
}
