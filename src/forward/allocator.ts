/**
 * Proxy port allocation: the lowest port of the range that no session holds
 * and nothing on the host listens on (TCP or UDP). Pure apart from the probe.
 * @module
 */

/** Finds a free port, or undefined when the range is exhausted. */
export async function allocatePort(
  low: number,
  high: number,
  held: ReadonlySet<number>,
  isFree: (port: number) => boolean | Promise<boolean>,
): Promise<number | undefined> {
  for (let port = low; port <= high; port++) {
    if (!held.has(port) && (await isFree(port))) return port;
  }
  return undefined;
}
