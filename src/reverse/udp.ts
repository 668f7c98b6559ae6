/**
 * UDP forwarding for a reverse session: which sessions need it (FASP
 * commands, per the rule's `<udp_commands>`), and the hook through which a
 * session registers it before handing over to ssh.
 * @module
 */

import type { IpAddress } from "../net/ip.ts";
import type { IpEndpoint } from "../net/endpoint.ts";
import type { ReverseRule } from "../config/mod.ts";
import { type ChannelRequest, matchesCommand } from "../ssh/policy.ts";

/** What registering a session's forwarding needs to know. */
export interface UdpSession {
  readonly id: string;
  /** The session process: it owns the rules, and keeps its pid through the exec. */
  readonly owner: number;
  readonly clientIp: IpAddress;
  readonly proxyIp: IpAddress;
  readonly rule: ReverseRule;
  readonly upstream: IpEndpoint;
  readonly upstreamIndex: number;
}

/** Registers a session's forwarding; never throws (the SSH session goes on without UDP). */
export interface UdpForwarder {
  /** True when the rules are in place. */
  register(session: UdpSession): Promise<boolean>;
}

/** True when the request runs one of the rule's `<udp_commands>`. */
export function usesUdp(rule: ReverseRule, request: ChannelRequest): boolean {
  return request.kind === "exec" && matchesCommand(rule.udpCommands, request.command);
}
