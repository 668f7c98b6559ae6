/**
 * Which of a process's mappings hold its executable's code and read-only data (/proc/self/maps),
 * the pages the DNAT service hands back to the kernel once it runs: the runtime touches most of
 * them only to start (V8's snapshot, start-up code), and left mapped they are a third of the
 * service's memory. Pure: text in, ranges out.
 * @module
 */

/** One range of virtual memory, in bytes. */
export interface PageRange {
  readonly start: bigint;
  readonly length: bigint;
}

/**
 * The read-only and executable, private mappings of `executable` in a maps text: never a
 * writable one (its pages may hold relocated data found nowhere else) and never another file.
 */
export function executableCodeRanges(mapsText: string, executable: string): PageRange[] {
  const ranges: PageRange[] = [];
  for (const line of mapsText.split("\n")) {
    // start-end perms offset dev inode path (the path may hold spaces)
    const match = /^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-][ps]) \S+ \S+ \d+ +(.+)$/.exec(line);
    if (!match) continue;
    const [, from, to, perms, path] = match as unknown as [string, string, string, string, string];
    if (path !== executable || (perms !== "r-xp" && perms !== "r--p")) continue;
    const start = BigInt(`0x${from}`);
    const end = BigInt(`0x${to}`);
    if (end > start) ranges.push({ start, length: end - start });
  }
  return ranges;
}
