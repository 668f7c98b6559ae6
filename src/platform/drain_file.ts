/**
 * The drain mark's file in the DNAT service's root-only directory: written
 * whole through a rename, so the service never reads half of one.
 * @module
 */

import { DRAIN_FILE, type DrainMark, formatDrainMark, parseDrainMark } from "../dnat/drain.ts";

/** The drain mark on disk (dnat/drain.ts's `DrainFile`). */
export const drainFile = {
  /** The mark, or undefined when the node is not drained. */
  async read(dir: string): Promise<DrainMark | undefined> {
    const path = `${dir}/${DRAIN_FILE}`;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
    // A damaged mark drains from when it was written.
    const mtime = (await Deno.stat(path).catch(() => undefined))?.mtime?.getTime() ?? Date.now();
    return parseDrainMark(text, mtime);
  },
  async write(dir: string, mark: DrainMark): Promise<void> {
    const temp = `${dir}/${DRAIN_FILE}.tmp`;
    await Deno.writeTextFile(temp, formatDrainMark(mark), { mode: 0o600 });
    await Deno.rename(temp, `${dir}/${DRAIN_FILE}`);
  },
  /** Removes the mark; false when there was none. */
  async clear(dir: string): Promise<boolean> {
    try {
      await Deno.remove(`${dir}/${DRAIN_FILE}`);
      return true;
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return false;
      throw error;
    }
  },
};
