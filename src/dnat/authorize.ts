/**
 * The helper's authorization, pure: a session may only forward to a host of
 * a configured rule, on the ports that rule implies. The caller names the
 * rule and host by index; addresses and ports come from the root-owned
 * config, never from the caller.
 * @module
 */

import type { Config, ReverseRule } from "../config/mod.ts";
import { cidrContains, type IpAddress } from "../net/ip.ts";
import type { DnatSession, InstalledSession } from "./types.ts";

/** A request the config does not allow. */
export class NotAuthorizedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotAuthorizedError";
  }
}

/** What the caller asks for. */
export interface AddRequest {
  readonly id: string;
  readonly owner: number;
  readonly client: IpAddress;
  readonly proxy: IpAddress;
  /** 1-based, as in logs. */
  readonly rule: number;
  /** 0-based position in the rule's host list. */
  readonly host: number;
}

/** The rule and the session it allows, ports not yet chosen. */
export interface Authorized {
  readonly rule: ReverseRule;
  readonly server: IpAddress;
}

/**
 * Checks the request against the config.
 * @throws {NotAuthorizedError}
 */
export function authorize(config: Config, request: AddRequest): Authorized {
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
  const families = new Set([request.client.family, request.proxy.family, upstream.ip.family]);
  if (families.size !== 1) {
    throw new NotAuthorizedError("client, proxy and internal server must all be IPv4 or all IPv6");
  }
  return { rule, server: upstream.ip };
}

/** The most sessions one rule can take when `udp_port_reuse` is false. */
export const MAX_SLOTS = 1000;

/**
 * Picks the session's ports. Host i of `<hosts>` listens on `proxy_port + i`
 * (proxy_port 0 = the server's own port); with `udp_port_reuse` false the
 * lowest slot k free on both sides is taken: proxy port + k → udp_port + k.
 * Call it under the helper lock, with the sessions installed now.
 * @throws {NotAuthorizedError} when no slot is free
 */
export function choosePorts(
  authorized: Authorized,
  request: AddRequest,
  existing: readonly InstalledSession[],
): DnatSession {
  const { rule, server } = authorized;
  const baseProxy = rule.proxyPort === 0 ? rule.udpPort : rule.proxyPort + request.host;
  const others = existing.filter((s) => s.id !== request.id);
  const slots = rule.udpPortReuse ? 1 : MAX_SLOTS;
  for (let k = 0; k < slots; k++) {
    const proxyPort = baseProxy + k;
    const serverPort = rule.udpPort + k;
    if (proxyPort > 65535 || serverPort > 65535) break;
    const taken = !rule.udpPortReuse &&
      others.some((s) =>
        (s.proxy === request.proxy.text && s.proxyPort === proxyPort) ||
        (s.server === server.text && s.serverPort === serverPort)
      );
    if (!taken) {
      return {
        id: request.id,
        owner: request.owner,
        client: request.client,
        proxy: request.proxy,
        proxyPort,
        server,
        serverPort,
      };
    }
  }
  throw new NotAuthorizedError(
    `no free UDP port for rule ${rule.index}: every slot from ${baseProxy} is in use`,
  );
}
