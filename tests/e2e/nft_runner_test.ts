/**
 * libnftables in-process and the nft command must leave the kernel in the
 * same state: the DNAT service uses the library where it is found and the
 * command elsewhere. Real nftables, in a namespace the test creates.
 */
import { namespaceName } from "../testbed/prefix.ts";
import { assertEquals, assertIncludes } from "../_assert.ts";
import { addNamespaces } from "../testbed/netns.ts";
import { must } from "../testbed/exec.ts";
import { ROOT } from "../testbed/paths.ts";
import { findLibnftables } from "../../src/platform/libnftables.ts";

async function drive(ns: string, runner: "lib" | "command") {
  const out = await must([
    "ip",
    "netns",
    "exec",
    ns,
    Deno.execPath(),
    "run",
    "--allow-all",
    `${ROOT}tests/e2e/probes/nft_runner_probe.ts`,
    runner,
  ], { timeoutMs: 60_000 });
  return JSON.parse(out) as { steps: Record<string, string[]>; refused: string };
}

Deno.test("libnftables and the nft command make the same changes and refuse alike", async () => {
  if (!findLibnftables()) throw new Error("libnftables is not installed: apt-get install nftables");
  const cleanups: Array<() => Promise<unknown>> = [];
  const ns = namespaceName("n");
  try {
    await addNamespaces([ns], cleanups);
    const lib = await drive(ns, "lib");
    const command = await drive(ns, "command");
    assertEquals(lib.steps, command.steps);
    // What the sequence must have done, whichever runner: not two empty tables alike.
    const timed = (set: string, key: string, data?: string) =>
      `${set}: ${key} timeout 2m${data ? ` : ${data}` : ""}`;
    assertEquals(lib.steps.added, [
      timed("dnat_addr", "198.18.1.2 . 198.18.1.1 . 33001", "198.18.2.2 . 33001"),
      timed("dnat_addr", "198.18.1.2 . 198.18.1.1 . 33002", "198.18.2.2 . 33002"),
      timed("dnat_port", "198.18.1.2 . 40001 . 198.18.1.1 . 33001", "198.18.2.2 . 33001"),
    ]);
    const learned = [
      timed("dnat_port", "198.18.1.2 . 40000 . 198.18.1.1 . 33001", "198.18.2.2 . 33001"),
      timed("dnat_port", "198.18.1.2 . 40000 . 198.18.1.1 . 33002", "198.18.2.2 . 33002"),
    ];
    assertEquals(lib.steps.replaced, [
      ...learned,
      timed("dnat_port", "198.18.1.2 . 40001 . 198.18.1.1 . 33001", "198.18.2.2 . 33001"),
    ]);
    assertEquals(lib.steps.removed, learned);
    assertEquals(lib.steps.repaired, ["a"]);
    assertEquals(lib.steps.afterRepair, lib.steps.removed);
    assertEquals(lib.steps.tornDown, ["(no table)"]);
    for (const refused of [lib.refused, command.refused]) {
      assertIncludes(refused, "NetfilterError: nftables refused the change: Error:");
      assertIncludes(refused, "no_such_table");
    }
  } finally {
    for (const cleanup of cleanups.reverse()) await cleanup();
  }
});
