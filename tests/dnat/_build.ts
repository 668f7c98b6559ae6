/**
 * Builders for the DNAT unit tests: endpoints, add requests and sessions
 * with the testbed's addresses, any field overridden.
 * @module
 */

import type { Target } from "../../src/dnat/contract.ts";
import type { Claimant, Registration } from "../../src/dnat/deps.ts";
import type { MarkedFlow } from "../../src/dnat/conntrack.ts";
import type { DnatSession, InstalledSession } from "../../src/dnat/types.ts";
import { type IpEndpoint, parseIpEndpoint } from "../../src/net/endpoint.ts";
import { parseIp } from "../../src/net/ip.ts";

/** `ip:port` as an endpoint (port 22 when left out). */
export function endpoint(text: string): IpEndpoint {
  const ep = parseIpEndpoint(text, 22);
  if (typeof ep === "string") throw new Error(ep);
  return ep;
}

/** Rule 1 host 0 (server 198.18.2.2:22). */
export function target(extra: Partial<Target> = {}): Target {
  return { rule: 1, host: 0, server: endpoint("198.18.2.2:22"), ...extra };
}

/** A session registering: owner `pid`, client 198.18.1.2 through proxy 198.18.1.1, rule 1 host 0. */
export function registration(
  pid: number,
  extra: { claimant?: Partial<Claimant>; target?: Partial<Target>; start?: number } = {},
): Registration {
  return {
    id: crypto.randomUUID(),
    claimant: {
      owner: { pid, start: extra.start ?? 1_800_000_000_000 },
      uid: 1001,
      client: parseIp("198.18.1.2")!,
      proxy: parseIp("198.18.1.1")!,
      ...extra.claimant,
    },
    target: target(extra.target),
    user: "alice",
  };
}

/** A session from 198.18.1.2 through 198.18.1.1:33001 to 198.18.2.2:33001, not yet learned. */
export function dnatSession(extra: Partial<DnatSession> = {}): DnatSession {
  return {
    id: crypto.randomUUID(),
    owner: { pid: 4242, start: 1_800_000_000_000 },
    client: parseIp("198.18.1.2")!,
    proxy: parseIp("198.18.1.1")!,
    proxyPort: 33001,
    portCount: 1,
    server: parseIp("198.18.2.2")!,
    serverPort: 33001,
    ...extra,
  };
}

/** A forwarding only the kernel holds (no registry knows it), as `backend.list()` returns it. */
export function kernelSession(extra: Partial<InstalledSession> = {}): InstalledSession {
  return {
    id: "3a9fd819-59c3-42bc-b0a2-d26304a1eb84",
    owner: { pid: 9, start: 9_000_000_000_000 },
    client: "198.18.1.9",
    proxy: "198.18.1.1",
    proxyPort: 5000,
    portCount: 1,
    server: "198.18.2.9",
    serverPort: 33001,
    ...extra,
  };
}

/** A UDP flow with the session mark from 198.18.1.2:40000 to the proxy 198.18.1.1:33001. */
export function markedFlow(
  extra: {
    protocol?: "udp" | "tcp";
    client?: string;
    proxy?: string;
    sport?: number;
    dport?: number;
  } = {},
): MarkedFlow {
  return {
    protocol: extra.protocol ?? "udp",
    src: parseIp(extra.client ?? "198.18.1.2")!,
    dst: parseIp(extra.proxy ?? "198.18.1.1")!,
    sport: extra.sport ?? 40000,
    dport: extra.dport ?? 33001,
    counters: { bytes: 100, packets: 1 },
  };
}
