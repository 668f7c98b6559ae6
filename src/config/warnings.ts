/**
 * Warnings about settings that load but cannot work as written: a rule an
 * earlier one always wins over, a proxy port a real ascp never uses, rules
 * that only the client's own word (host_domain) tells apart, and a forward
 * port range that meets a rule's UDP ports.
 * @module
 */

import { forwardReverseOverlaps } from "./port_overlap.ts";
import type { RawElement } from "./raw.ts";
import type { Problems, SectionReader } from "./reader.ts";
import type { ForwardConfig, Position, ReverseRule } from "./types.ts";

/**
 * A real ascp sends UDP to the port the internal server announces through
 * the SSH channel, which xferproxy passes on unchanged: a proxy port other
 * than the server's own is never used by such a client.
 */
export function warnRealAscp(
  reader: SectionReader,
  element: RawElement,
  name: string,
  ports: { proxyPort: number; udpPort: number; span: number },
  problems: Problems,
): void {
  const { proxyPort, udpPort, span } = ports;
  if (proxyPort === 0 || proxyPort === udpPort) return;
  problems.warn(
    reader.child("proxy_port") ?? element,
    "proxy_port",
    `${name}: <proxy_port> ${proxyPort} differs from the internal server's <udp_port> ${udpPort}; a real ascp sends UDP to the port the server announces (${udpPort}${
      span > 1 ? `-${udpPort + span - 1}` : ""
    }), so set <proxy_port>0</proxy_port> unless clients are told the proxy port some other way`,
  );
}

/** True when `earlier` matches every session `later` matches, so `later` never gets one. */
function covers(earlier: ReverseRule, later: ReverseRule): boolean {
  const ip = !earlier.hostIp || earlier.hostIp.text === later.hostIp?.text;
  const domain = !earlier.hostDomain || (
    earlier.hostDomain.name === later.hostDomain?.name &&
    (earlier.hostDomain.port === undefined || earlier.hostDomain.port === later.hostDomain.port)
  );
  return ip && domain;
}

/** Warns about rules an earlier rule always matches first. */
export function warnShadowedRules(
  rules: ReverseRule[],
  elements: RawElement[],
  problems: Problems,
): void {
  rules.forEach((rule, i) => {
    const earlier = rules.slice(0, i).find((r) => covers(r, rule));
    if (earlier) {
      problems.warn(
        elements[i] as RawElement,
        "rule",
        `<rule> ${rule.index} can never match: <rule> ${earlier.index} (line ${earlier.line}) matches first`,
      );
    }
  });
}

/** Who a session of the rule becomes upstream: the account, its key and the servers. */
function accountOf(rule: ReverseRule): string {
  return JSON.stringify([
    rule.squashUser ?? null,
    rule.keyfile ?? null,
    rule.upstreams.map((u) => `${u.ip.text}:${u.port}`),
  ]);
}

/**
 * `host_domain` is the name the client says it dialled (`XFERPROXY_HOST`, set by the client
 * with `ssh -o SetEnv=…`): any client may send any name. Two rules that differ only by it let
 * every partner who reaches one use the other's account, so it must never separate partners.
 */
export function warnClientChosenRules(
  rules: ReverseRule[],
  elements: RawElement[],
  problems: Problems,
): void {
  const live = rules.filter((rule, i) => !rules.slice(0, i).some((r) => covers(r, rule)));
  live.forEach((rule, i) => {
    const earlier = live.slice(0, i).find((r) =>
      r.hostIp?.text === rule.hostIp?.text && accountOf(r) !== accountOf(rule)
    );
    if (!earlier) return;
    problems.warn(
      elements[rules.indexOf(rule)] as RawElement,
      "host_domain",
      `<rule> ${rule.index} and <rule> ${earlier.index} (line ${earlier.line}) differ only by host_domain but use different internal accounts or servers: host_domain is the name the client sends (XFERPROXY_HOST), so every client that reaches one rule can choose the other`,
      "never separate partners by host_domain: give each partner their own proxy account and no <squash_user> (each logs in upstream as themselves), or a proxy address only their network reaches",
    );
  });
}

/**
 * The forward daemon hands out ports of its range without knowing the rules, and netfilter tells
 * a forward session's flows from a reverse session's only by client, proxy address and port: on a
 * port both claim, one client address's UDP reaches whichever session's rule comes first.
 */
export function warnPortOverlap(
  forward: { config: ForwardConfig; at: Position },
  rules: readonly ReverseRule[],
  problems: Problems,
): void {
  const { portRangeLow: low, portRangeHigh: high } = forward.config;
  for (const { rule, span, where } of forwardReverseOverlaps(forward.config, rules)) {
    const ports = span.low === span.high ? `${span.low}` : `${span.low}-${span.high}`;
    problems.warn(
      forward.at,
      "port_range",
      `the forward proxy's port range ${low}-${high} overlaps UDP port${
        span.low === span.high ? "" : "s"
      } ${ports} of <rule> ${rule.index} (line ${rule.line}) on ${
        where ? `proxy address${where.includes("/") ? "es" : ""} ${where}` : "every proxy address"
      }: a forward session can be given a port where a reverse session of the same client address receives FASP, and which of the two its UDP reaches then depends on rule order`,
      `move <port_range_low>-<port_range_high> outside ${ports}, or bind the forward proxy (<bind_ip_address>) and <rule> ${rule.index} (host_ip) to different addresses`,
    );
  }
}
