/**
 * conntrack: purge a session's flows (a stale, un-NATed entry would
 * blackhole the session; a leftover NATed one would keep forwarding after it
 * ends), and learn the client's source port from the first flow.
 * @module
 */

import type { CommandRunner } from "../platform/runner.ts";
import type { DnatSession } from "./types.ts";

/** The conntrack selection of a session's original-direction UDP flows. */
export function flowFilter(
  s: Pick<DnatSession, "client" | "proxy" | "proxyPort" | "clientPort">,
  protocol: "udp" | "tcp" = "udp",
): string[] {
  const family = s.client.family === 6 ? ["-f", "ipv6"] : [];
  const sport = s.clientPort === undefined ? [] : ["--sport", String(s.clientPort)];
  return [
    ...family,
    "-p",
    protocol,
    "--orig-src",
    s.client.text,
    "--orig-dst",
    s.proxy.text,
    ...sport,
    "--dport",
    String(s.proxyPort),
  ];
}

/** Source ports of the flows `conntrack -L` printed, oldest first as listed. */
export function parseSourcePorts(listing: string): number[] {
  const ports: number[] = [];
  for (const line of listing.split("\n")) {
    const m = /\bsport=(\d+)\b/.exec(line);
    if (m) ports.push(Number(m[1]));
  }
  return ports;
}

/** conntrack operations for sessions. */
export interface Conntrack {
  /** Deletes the session's flows (all source ports unless `clientPort` is set); "none found" is fine. */
  purge(
    s: Pick<DnatSession, "client" | "proxy" | "proxyPort" | "clientPort">,
    protocol?: "udp" | "tcp",
  ): Promise<void>;
  /** Deletes the session's flows from source ports not in `keep`. */
  purgeOtherPorts(
    s: Pick<DnatSession, "client" | "proxy" | "proxyPort">,
    keep: ReadonlySet<number>,
  ): Promise<void>;
  /** Source ports of the session's current flows. */
  sourcePorts(s: Pick<DnatSession, "client" | "proxy" | "proxyPort">): Promise<number[]>;
}

/** conntrack(8) through a runner. */
export function conntrackTool(runner: CommandRunner): Conntrack {
  const list = async (s: Pick<DnatSession, "client" | "proxy" | "proxyPort">) => {
    const result = await runner.run("conntrack", ["-L", ...flowFilter(s)]);
    if (result.code !== 0) throw new Error(`conntrack -L failed: ${result.stderr.trim()}`);
    return parseSourcePorts(result.stdout);
  };
  const purge = async (
    s: Pick<DnatSession, "client" | "proxy" | "proxyPort" | "clientPort">,
    protocol: "udp" | "tcp" = "udp",
  ) => {
    const result = await runner.run("conntrack", ["-D", ...flowFilter(s, protocol)]);
    // conntrack exits 1 when nothing matched: that is success here.
    if (result.code !== 0 && !/0 flow entries/.test(result.stderr)) {
      throw new Error(`conntrack -D failed: ${result.stderr.trim()}`);
    }
  };
  return {
    purge,
    sourcePorts: list,
    async purgeOtherPorts(s, keep) {
      for (const port of new Set(await list(s))) {
        if (!keep.has(port)) await purge({ ...s, clientPort: port });
      }
    },
  };
}
