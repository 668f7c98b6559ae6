/**
 * The privileged call's authorization and port planning, pure. A session
 * may only forward to a host of a configured rule, on the ports that rule
 * implies; the caller names the rule and host by index, and addresses and
 * ports come from the root-owned config, never from the caller.
 *
 * Ports: a real ascp sends UDP to the port the internal server announces
 * through the SSH channel, which passes unchanged, so the proxy receives on
 * the server's own port (`proxy_port` 0), across the server's span when
 * `udp_port_reuse` is false. Load-balanced hosts share that port: each
 * session's flow is told apart by its learned source port.
 * @module
 */

import type { Config, ReverseRule } from "../config/mod.ts";
import { cidrContains } from "../net/ip.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { IpAddress } from "../net/ip.ts";
import type { Target } from "./contract.ts";
import type { DnatSession, Owner } from "./types.ts";
import { NotAuthorizedError } from "./errors.ts";

/** The rule and server a request is allowed. */
export interface Authorized {
  readonly rule: ReverseRule;
  readonly server: IpEndpoint;
}

/** What is checked: where the session goes, and the addresses it comes from. */
export interface AuthorizeRequest extends Target {
  readonly client: IpAddress;
  readonly proxy: IpAddress;
}

/**
 * Checks the request against the config.
 * @throws {NotAuthorizedError}
 */
export function authorize(config: Config, request: AuthorizeRequest): Authorized {
  const rproxy = config.server.rproxy;
  if (!rproxy.enabled) throw new NotAuthorizedError("the reverse proxy is disabled in the config");
  const rule = rproxy.rules[request.rule - 1];
  if (!rule) throw new NotAuthorizedError(`the config has no rule ${request.rule}`);
  if (rule.hostIp && !cidrContains(rule.hostIp, request.proxy)) {
    throw new NotAuthorizedError(
      `proxy address ${request.proxy.text} is not covered by rule ${request.rule} (${rule.hostIp.text})`,
    );
  }
  const upstream = rule.upstreams[request.host];
  if (!upstream) throw new NotAuthorizedError(`rule ${request.rule} has no host ${request.host}`);
  if (formatEndpoint(upstream) !== formatEndpoint(request.server)) {
    throw new NotAuthorizedError(
      `host ${request.host} of rule ${request.rule} is ${formatEndpoint(upstream)}, not ${
        formatEndpoint(request.server)
      } (does the session use another config than ${config.source}?)`,
    );
  }
  const families = new Set([request.client.family, request.proxy.family, upstream.ip.family]);
  if (families.size !== 1) {
    throw new NotAuthorizedError("client, proxy and internal server must all be IPv4 or all IPv6");
  }
  return { rule, server: upstream };
}

/** The most slots a rule with a fixed proxy port and no port reuse can hand out. */
export const MAX_SLOTS = 1000;

function overlaps(a: DnatSession, b: DnatSession): boolean {
  return a.proxyPort < b.proxyPort + b.portCount && b.proxyPort < a.proxyPort + a.portCount;
}

/** Two sessions' UDP from one client to one proxy port would be ambiguous without source ports. */
function sameEntry(a: DnatSession, b: DnatSession): boolean {
  return a.client.text === b.client.text && a.proxy.text === b.proxy.text && overlaps(a, b);
}

function sameTarget(a: DnatSession, b: DnatSession): boolean {
  return a.server.text === b.server.text &&
    a.serverPort - a.proxyPort === b.serverPort - b.proxyPort;
}

/**
 * Picks the session's ports, given the sessions installed now (call it under
 * the DNAT lock).
 * @throws {NotAuthorizedError} when every slot is taken
 */
export function choosePorts(
  authorized: Authorized,
  request: { id: string; owner: Owner; client: IpAddress; proxy: IpAddress },
  existing: readonly DnatSession[],
): DnatSession {
  const { rule, server } = authorized;
  const base = {
    id: request.id,
    owner: request.owner,
    client: request.client,
    proxy: request.proxy,
    server: server.ip,
  };
  if (rule.udpPortReuse) {
    return {
      ...base,
      proxyPort: rule.proxyPort === 0 ? rule.udpPort : rule.proxyPort,
      portCount: 1,
      serverPort: rule.udpPort,
    };
  }
  if (rule.proxyPort === 0) {
    // The server picks a port of its span and announces it: forward the whole span unchanged.
    return {
      ...base,
      proxyPort: rule.udpPort,
      portCount: rule.udpPortCount,
      serverPort: rule.udpPort,
    };
  }
  // A fixed proxy port: slot k maps proxy_port + k to udp_port + k (clients must be told).
  const others = existing.filter((s) => s.id !== request.id);
  for (let k = 0; k < Math.min(MAX_SLOTS, rule.udpPortCount); k++) {
    const proxyPort = rule.proxyPort + k;
    const serverPort = rule.udpPort + k;
    if (proxyPort > 65535 || serverPort > 65535) break;
    const taken = others.some((s) =>
      (s.proxy.text === request.proxy.text && proxyPort >= s.proxyPort &&
        proxyPort < s.proxyPort + s.portCount) ||
      (s.server.text === server.ip.text && serverPort >= s.serverPort &&
        serverPort < s.serverPort + s.portCount)
    );
    if (!taken) return { ...base, proxyPort, portCount: 1, serverPort };
  }
  throw new NotAuthorizedError(
    `no free UDP port for rule ${rule.index}: every slot from ${rule.proxyPort} is in use`,
  );
}

/** A session that must learn its source port before `candidate` can be installed. */
export interface Conflict {
  readonly session: DnatSession;
  /** It will never learn one (source-port filtering is off for it). */
  readonly permanent: boolean;
}

/**
 * Sessions of the same client, to the same proxy port, going to another
 * server, that have not learned their source port yet: while one of those
 * holds an address-only rule, a new one would make the client's flows
 * ambiguous. Sessions to the same server share their target and never
 * conflict.
 */
export function conflicts(
  candidate: DnatSession,
  existing: readonly { session: DnatSession; filtering: boolean }[],
): Conflict[] {
  return existing
    .filter(({ session }) =>
      session.id !== candidate.id && session.clientPort === undefined &&
      sameEntry(session, candidate) && !sameTarget(session, candidate)
    )
    .map(({ session, filtering }) => ({ session, permanent: !filtering }));
}
