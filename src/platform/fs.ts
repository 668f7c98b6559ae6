/**
 * The real file system behind config/fs.ts's `Fs`.
 * @module
 */

import type { Fs } from "../config/fs.ts";
import { strictText } from "../config/text.ts";

/** The real file system. */
export const realFs: Fs = {
  readTextFile: async (path) => strictText(await Deno.readFile(path)),
  stat: async (path) => {
    const info = await Deno.stat(path);
    return { uid: info.uid ?? -1, mode: info.mode ?? 0 };
  },
};
