/** A drain mark kept in memory, by directory. */
import type { DrainFile, DrainMark } from "../../src/dnat/drain.ts";

/** A DrainFile over a map; `marks` shows what is set. */
export function fakeDrainFile(): DrainFile & { marks: Map<string, DrainMark> } {
  const marks = new Map<string, DrainMark>();
  return {
    marks,
    read: (dir) => Promise.resolve(marks.get(dir)),
    write: (dir, mark) => Promise.resolve(void marks.set(dir, mark)),
    clear: (dir) => Promise.resolve(marks.delete(dir)),
  };
}
