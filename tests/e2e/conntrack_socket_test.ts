/**
 * The DNAT service's ctnetlink lookup (platform/conntrack_socket.ts) against the real kernel, in
 * a namespace the test creates: it reads a TCP connection's state and counters as
 * `conntrack -L` prints them, sees it closing, and knows nothing of one that never was; IPv4
 * and IPv6.
 */
import { assertEquals, assertOk } from "../_assert.ts";
import { must } from "../testbed/exec.ts";
import { addNamespaces } from "../testbed/netns.ts";
import { namespaceName } from "../testbed/prefix.ts";
import { ROOT } from "../testbed/paths.ts";
import type { TrackedConnection } from "../../src/dnat/conntrack_text.ts";

interface Probed {
  open?: TrackedConnection;
  listing: string;
  closed?: TrackedConnection;
  never: TrackedConnection | null;
}

for (const [family, address] of [["IPv4", "198.18.78.1"], ["IPv6", "2001:db8:78::1"]] as const) {
  Deno.test(`ctnetlink lookups read a TCP connection as conntrack counts it (${family})`, async () => {
    const cleanups: Array<() => Promise<unknown>> = [];
    const ns = namespaceName(`cs${family === "IPv6" ? "6" : "4"}`);
    try {
      await addNamespaces([ns], cleanups);
      const inNs = (...argv: string[]) => must(["ip", "netns", "exec", ns, ...argv]);
      await inNs("ip", "link", "set", "lo", "up");
      await inNs(
        "ip",
        ...(family === "IPv6" ? ["-6", "addr", "add", `${address}/128`, "dev", "lo", "nodad"] : [
          "addr",
          "add",
          `${address}/32`,
          "dev",
          "lo",
        ]),
      );
      // A conntrack match loads conntrack in the namespace; the service turns accounting on.
      await inNs(
        family === "IPv6" ? "ip6tables" : "iptables",
        ...["-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED", "-j", "ACCEPT"],
      );
      await inNs("sysctl", "-qw", "net.netfilter.nf_conntrack_acct=1");
      const out = await inNs(
        Deno.execPath(),
        "run",
        "--allow-all",
        `${ROOT}tests/e2e/probes/conntrack_socket_probe.ts`,
        address,
      );
      const probed = JSON.parse(out) as Probed;
      const listed = [...probed.listing.matchAll(/\bpackets=(\d+) bytes=(\d+)\b/g)].map((m) => ({
        packets: Number(m[1]),
        bytes: Number(m[2]),
      }));
      assertEquals(listed.length, 2, probed.listing);
      assertEquals(probed.open, { state: "ESTABLISHED", original: listed[0], reply: listed[1] });
      // The payload each way, plus headers.
      assertOk(probed.open!.original.bytes > 10000, JSON.stringify(probed.open));
      assertOk(probed.open!.reply.bytes > 300, JSON.stringify(probed.open));
      assertOk(
        ["FIN_WAIT", "CLOSE_WAIT", "LAST_ACK", "TIME_WAIT", "CLOSE"].includes(probed.closed!.state),
        JSON.stringify(probed.closed),
      );
      assertOk(probed.closed!.original.packets > probed.open!.original.packets);
      assertEquals(probed.never, null);
    } finally {
      for (const cleanup of cleanups.reverse()) await cleanup();
    }
  });
}
