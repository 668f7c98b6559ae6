/**
 * Where the forward proxy's port range meets a reverse rule's UDP ports on a proxy address both
 * receive on, pure. The forward daemon picks its ports without knowing the rules, and a forward
 * session's rules and a reverse session's are told apart only by client, proxy address and port:
 * where one client address holds both on one port, rule order decides which its UDP reaches.
 * @module
 */

import { type Cidr, cidrContains, type IpAddress } from "../net/ip.ts";
import type { ForwardConfig, ReverseRule } from "./types.ts";

/** Ports `low` to `high`, both included. */
export interface PortSpan {
  readonly low: number;
  readonly high: number;
}

/** What of a rule the overlap depends on. */
export type RulePorts = Pick<
  ReverseRule,
  "index" | "hostIp" | "proxyPort" | "udpPort" | "udpPortReuse" | "udpPortCount"
>;

/** What of the forward proxy the overlap depends on. */
export type ForwardPorts = Pick<ForwardConfig, "bindIpAddress" | "portRangeLow" | "portRangeHigh">;

/** A rule whose UDP ports the forward range overlaps on a shared proxy address. */
export interface PortOverlap<R extends RulePorts> {
  readonly rule: R;
  /** Every UDP port the rule's sessions receive on at the proxy. */
  readonly span: PortSpan;
  /** The shared proxy address or network (the bound side's); undefined: every address. */
  readonly where: string | undefined;
}

/**
 * The UDP ports a rule's sessions receive on at the proxy: `proxy_port` (0: the server's
 * `udp_port`), across `udp_port_count` ports when `udp_port_reuse` is false.
 */
export function ruleUdpSpan(
  rule: Pick<RulePorts, "proxyPort" | "udpPort" | "udpPortReuse" | "udpPortCount">,
): PortSpan {
  const low = rule.proxyPort === 0 ? rule.udpPort : rule.proxyPort;
  return { low, high: low + (rule.udpPortReuse ? 1 : rule.udpPortCount) - 1 };
}

/**
 * `0.0.0.0`: the forward daemon uses whichever local address the client reaches. `::` is read the
 * same way (every address), the safe side for a warning.
 */
function unbound(ip: IpAddress): boolean {
  return ip.bytes.every((b) => b === 0);
}

/** `198.18.0.1` for a single address, `198.18.0.0/15` for a network. */
function cidrText(cidr: Cidr): string {
  return cidr.prefix === (cidr.address.family === 4 ? 32 : 128) ? cidr.address.text : cidr.text;
}

/** The rules whose UDP ports the forward range overlaps on a proxy address both receive on. */
export function forwardReverseOverlaps<R extends RulePorts>(
  forward: ForwardPorts,
  rules: readonly R[],
): PortOverlap<R>[] {
  const bind = unbound(forward.bindIpAddress) ? undefined : forward.bindIpAddress;
  return rules.flatMap((rule) => {
    const span = ruleUdpSpan(rule);
    if (span.high < forward.portRangeLow || forward.portRangeHigh < span.low) return [];
    if (bind && rule.hostIp && !cidrContains(rule.hostIp, bind)) return [];
    return [{ rule, span, where: bind?.text ?? (rule.hostIp && cidrText(rule.hostIp)) }];
  });
}
