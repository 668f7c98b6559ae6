/**
 * The hook through which a reverse session opens kernel UDP forwarding for
 * its transfer. The DNAT manager implements it; until then sessions run with
 * the no-op forwarder.
 * @module
 */

import type { IpAddress } from "../net/ip.ts";
import type { IpEndpoint } from "../net/endpoint.ts";
import type { ReverseRule } from "../config/mod.ts";

/** What the forwarder needs to know about a session. */
export interface UdpSession {
  readonly id: string;
  readonly clientIp: IpAddress;
  readonly proxyIp: IpAddress;
  readonly rule: ReverseRule;
  readonly upstream: IpEndpoint;
  readonly upstreamIndex: number;
}

/** Open forwarding for a session; `close` removes it. */
export interface UdpForwarding {
  close(): Promise<void>;
}

/** Opens and closes a session's UDP forwarding. */
export interface UdpForwarder {
  /** Returns undefined when forwarding is unavailable (the SSH session goes on). */
  open(session: UdpSession): Promise<UdpForwarding | undefined>;
}

/** Forwards nothing. */
export const noUdpForwarding: UdpForwarder = {
  open: () => Promise.resolve(undefined),
};
