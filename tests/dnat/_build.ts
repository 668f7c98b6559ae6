/**
 * Builders for the DNAT unit tests: endpoints, add requests and sessions
 * with the testbed's addresses, any field overridden.
 * @module
 */

import type { AddRequest } from "../../src/dnat/contract.ts";
import type { DnatSession, InstalledSession } from "../../src/dnat/types.ts";
import { type IpEndpoint, parseIpEndpoint } from "../../src/net/endpoint.ts";
import { parseIp } from "../../src/net/ip.ts";

/** `ip:port` as an endpoint (port 22 when left out). */
export function endpoint(text: string): IpEndpoint {
  const ep = parseIpEndpoint(text, 22);
  if (typeof ep === "string") throw new Error(ep);
  return ep;
}

/** A request from client 198.18.1.2 to proxy 198.18.1.1, rule 1 host 0 (server 198.18.2.2:22). */
export function addRequest(extra: Partial<AddRequest> = {}): AddRequest {
  return {
    id: crypto.randomUUID(),
    owner: 77,
    client: parseIp("198.18.1.2")!,
    proxy: parseIp("198.18.1.1")!,
    rule: 1,
    host: 0,
    server: endpoint("198.18.2.2:22"),
    ...extra,
  };
}

/** A session from 198.18.1.2 through 198.18.1.1:33001 to 198.18.2.2:33001, not yet learned. */
export function dnatSession(extra: Partial<DnatSession> = {}): DnatSession {
  return {
    id: crypto.randomUUID(),
    owner: { pid: 4242, start: 1_800_000_000 },
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
    owner: { pid: 9, start: 9 },
    client: "198.18.1.9",
    proxy: "198.18.1.1",
    proxyPort: 5000,
    portCount: 1,
    server: "198.18.2.9",
    serverPort: 33001,
    ...extra,
  };
}
