/**
 * Network namespaces for test beds: created with loopback up, and a cleanup
 * that deletes them (and with them their veth pairs).
 * @module
 */

import { must, run } from "./exec.ts";

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

/** A veth pair from `a`'s device to `b`'s device, each in its namespace. */
export async function addVeth(
  ipn: (name: string, ...args: string[]) => Promise<string>,
  [nsA, devA]: readonly [string, string],
  [nsB, devB]: readonly [string, string],
): Promise<void> {
  await ipn(nsA, "link", "add", devA, "type", "veth", "peer", "name", devB, "netns", nsB);
}
