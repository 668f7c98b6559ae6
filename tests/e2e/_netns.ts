/**
 * Network namespaces for test beds: created with loopback up, and a cleanup
 * that deletes them (and with them their veth pairs).
 * @module
 */

import { must, run } from "./_exec.ts";

/** Creates the namespaces; pushes their removal onto `cleanups`. Returns an `ip -n NS …` helper. */
export async function addNamespaces(
  names: readonly string[],
  cleanups: Array<() => Promise<unknown>>,
): Promise<(name: string, ...args: string[]) => Promise<string>> {
  for (const name of names) {
    await must(["ip", "netns", "add", name]);
    cleanups.push(() => run(["ip", "netns", "del", name]));
    await must(["ip", "-n", name, "link", "set", "lo", "up"]);
  }
  return (name, ...args) => must(["ip", "-n", name, ...args]);
}
