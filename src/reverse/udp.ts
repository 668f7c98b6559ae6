/**
 * UDP forwarding for a reverse session: which sessions need it (FASP
 * commands, per the rule's `<udp_commands>`), and the hook through which a
 * session registers it before handing over to ssh.
 * @module
 */

import type { IpEndpoint } from "../net/endpoint.ts";
import type { ReverseRule } from "../config/mod.ts";
import { type ChannelRequest, matchesCommand } from "../ssh/policy.ts";

/**
 * What registering a session's forwarding through sudo names: where it
 * goes. Who the session is (the process that ran sudo, its sshd connection)
 * the privileged call reads from the kernel.
 */
export interface UdpSession {
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
