/**
 * nftables planning, pure. Our own table per family (`ip xferproxy`,
 * `ip6 xferproxy`): NAT maps and flow sets, UDP and TCP (forward sessions
 * carry their SSH port), whose elements derive from the sessions; elements several sessions need (one client's sessions to one
 * server) are shared. Elements time out unless refreshed, so even if the
 * DNAT service and its sessions all die, forwarding ends in the kernel.
 * @module
 */

import { type DnatSession, REFRESH_SECONDS, SESSION_CT_MARK } from "../types.ts";

/** Seconds an element lives without a refresh: four of the owners' refreshes (REFRESH_SECONDS). */
export const ELEMENT_TIMEOUT_S = REFRESH_SECONDS * 4;
/** Marks session flows' conntrack entries, so other firewall tables can accept them. */
export const CT_MARK = `0x${SESSION_CT_MARK.toString(16)}`;

/** Address family words nft uses. */
export function nftFamily(family: 4 | 6): "ip" | "ip6" {
  return family === 4 ? "ip" : "ip6";
}

/** The table definition, created once when missing. */
export function tableText(family: 4 | 6): string {
  const f = nftFamily(family);
  const addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const ip = family === 4 ? "ip" : "ip6";
  return `table ${f} xferproxy {
  map dnat_port {
    type ${addr} . inet_service . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }
  map dnat_addr {
    type ${addr} . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }
  set flows {
    type ${addr} . ${addr} . inet_service
    flags timeout
  }
${TCP_OBJECTS(addr)}
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    meta l4proto udp dnat ${ip} to ${ip} saddr . udp sport . ${ip} daddr . udp dport map @dnat_port
    meta l4proto udp dnat ${ip} to ${ip} saddr . ${ip} daddr . udp dport map @dnat_addr
    ${tcpRules(family).prerouting}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ${ip} saddr . ${ip} daddr . udp dport @flows masquerade
    ${tcpRules(family).postrouting}
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct status dnat ${ip} saddr . ${ip} daddr . udp dport @flows ct mark set ${CT_MARK} accept
    ct status dnat ${ip} daddr . ${ip} saddr . udp sport @flows ct mark set ${CT_MARK} accept
    ${tcpRules(family).forward.join("\n    ")}
  }
}
`;
}

const TCP_OBJECTS = (addr: string) =>
  `  map dnat_tcp {
    type ${addr} . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }
  set tcp_flows {
    type ${addr} . ${addr} . inet_service
    flags timeout
  }`;

/** The rules of TCP forwarding (forward sessions' SSH port), by chain. */
function tcpRules(family: 4 | 6) {
  const ip = family === 4 ? "ip" : "ip6";
  return {
    prerouting:
      `meta l4proto tcp dnat ${ip} to ${ip} saddr . ${ip} daddr . tcp dport map @dnat_tcp`,
    postrouting: `ct status dnat ${ip} saddr . ${ip} daddr . tcp dport @tcp_flows masquerade`,
    forward: [
      `ct status dnat ${ip} saddr . ${ip} daddr . tcp dport @tcp_flows ct mark set ${CT_MARK} accept`,
      `ct status dnat ${ip} daddr . ${ip} saddr . tcp sport @tcp_flows ct mark set ${CT_MARK} accept`,
    ],
  };
}

/**
 * Adds the TCP maps and rules to a table an earlier version made without
 * them (UDP only), in one transaction.
 */
export function tcpUpgradeText(family: 4 | 6): string {
  const f = nftFamily(family);
  const addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const rules = tcpRules(family);
  return [
    `table ${f} xferproxy {`,
    TCP_OBJECTS(addr),
    "}",
    `add rule ${f} xferproxy prerouting ${rules.prerouting}`,
    `add rule ${f} xferproxy postrouting ${rules.postrouting}`,
    ...rules.forward.map((r) => `add rule ${f} xferproxy forward ${r}`),
  ].join("\n") + "\n";
}

/** True when a listing of our prerouting chain shows the TCP rule (a current table). */
export function hasTcp(prerouting: string): boolean {
  return prerouting.includes("@dnat_tcp");
}

/** Our maps and sets, each listed by `reconcile`. */
export const NAT_SETS = ["dnat_port", "dnat_addr", "flows", "dnat_tcp", "tcp_flows"] as const;

/** A map or set of ours. */
export type NatSet = typeof NAT_SETS[number];

/** One element of our maps or set. */
export interface NatElement {
  readonly set: NatSet;
  /** The key as `nft` prints it: values joined by " . ". */
  readonly key: string;
  readonly data?: string;
}

/** The elements a session needs: one DNAT entry and one flow entry per port of its span. */
export function natElements(s: DnatSession): NatElement[] {
  const elements: NatElement[] = [];
  for (let j = 0; j < s.portCount; j++) {
    const proxyPort = s.proxyPort + j;
    const serverPort = s.serverPort + j;
    const data = `${s.server.text} . ${serverPort}`;
    elements.push(
      s.clientPort === undefined
        ? { set: "dnat_addr", key: `${s.client.text} . ${s.proxy.text} . ${proxyPort}`, data }
        : {
          set: "dnat_port",
          key: `${s.client.text} . ${s.clientPort} . ${s.proxy.text} . ${proxyPort}`,
          data,
        },
      { set: "flows", key: `${s.client.text} . ${s.server.text} . ${serverPort}` },
    );
  }
  if (s.tcpServerPort !== undefined) {
    elements.push(
      {
        set: "dnat_tcp",
        key: `${s.client.text} . ${s.proxy.text} . ${s.proxyPort}`,
        data: `${s.server.text} . ${s.tcpServerPort}`,
      },
      { set: "tcp_flows", key: `${s.client.text} . ${s.server.text} . ${s.tcpServerPort}` },
    );
  }
  return elements;
}

/** `set|key`: one element's identity. */
export function elementId(e: Pick<NatElement, "set" | "key">): string {
  return `${e.set}|${e.key}`;
}

/** Every element the sessions need, each once. */
export function neededElements(sessions: readonly DnatSession[]): Map<string, NatElement> {
  const needed = new Map<string, NatElement>();
  for (const s of sessions) for (const e of natElements(s)) needed.set(elementId(e), e);
  return needed;
}

/** `add element …` with a fresh timeout (a no-op when the element exists). */
export function addLine(family: 4 | 6, e: NatElement): string {
  const data = e.data ? ` : ${e.data}` : "";
  return `add element ${
    nftFamily(family)
  } xferproxy ${e.set} { ${e.key} timeout ${ELEMENT_TIMEOUT_S}s${data} }`;
}

/**
 * Lines that delete an element whether or not the kernel still holds it (a
 * firewall reload may have dropped it): add it, then delete it, in the same
 * transaction.
 */
export function deleteLines(family: 4 | 6, e: NatElement): string[] {
  return [
    addLine(family, e),
    `delete element ${nftFamily(family)} xferproxy ${e.set} { ${e.key} }`,
  ];
}

/** Lines that reset an element's timeout: delete (safely) and add again. */
export function refreshLines(family: 4 | 6, e: NatElement): string[] {
  return [...deleteLines(family, e), addLine(family, e)];
}

/**
 * Element ids (`set|key`, as `elementId`) of our maps and sets, from one `nft -j list table …`
 * of our table (concatenations joined with " . "); other sets, chains and rules are skipped.
 */
export function parseElementIds(json: string): Set<string> {
  const ids = new Set<string>();
  const ours = new Set<string>(NAT_SETS);
  const doc = JSON.parse(json) as {
    nftables?: Array<Record<string, { name?: string; elem?: unknown[] }>>;
  };
  for (const item of doc.nftables ?? []) {
    const body = item.map ?? item.set;
    if (!body?.name || !ours.has(body.name)) continue;
    for (const elem of body.elem ?? []) {
      // Maps list [key, data] pairs; sets list the key alone. Keys may carry timeout/comment wrappers.
      const keyPart = Array.isArray(elem) ? elem[0] : elem;
      const wrapped = (keyPart as { elem?: { val?: unknown } }).elem?.val ?? keyPart;
      const concat = (wrapped as { concat?: unknown[] }).concat;
      ids.add(`${body.name}|${concat ? concat.map(String).join(" . ") : String(wrapped)}`);
    }
  }
  return ids;
}
