/**
 * nftables planning, pure. Our own table per family (`ip xferproxy`,
 * `ip6 xferproxy`): NAT maps and a flow set whose elements time out unless
 * the session's helper refreshes them, so even a crashed owner's forwarding
 * ends in the kernel. A registry set holds one element per session (a slot
 * number) whose comment records the session; the NAT elements derive from
 * the registry and are shared by sessions that need the same key.
 * @module
 */

import { parseIp } from "../net/ip.ts";
import type { DnatSession, InstalledSession } from "./types.ts";
import { parseRuleTag, ruleTag } from "./types.ts";

/** Seconds an element lives without a refresh. */
export const ELEMENT_TIMEOUT_S = 60;
/** Marks session flows' conntrack entries, so other firewall tables can accept them. */
export const CT_MARK = "0x78700000";

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
  set sessions {
    type inet_service
    flags timeout
  }
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
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    meta l4proto udp dnat ${ip} to ${ip} saddr . udp sport . ${ip} daddr . udp dport map @dnat_port
    meta l4proto udp dnat ${ip} to ${ip} saddr . ${ip} daddr . udp dport map @dnat_addr
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ct status dnat ${ip} saddr . ${ip} daddr . udp dport @flows masquerade
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ct status dnat ${ip} saddr . ${ip} daddr . udp dport @flows ct mark set ${CT_MARK} accept
    ct status dnat ${ip} daddr . ${ip} saddr . udp sport @flows ct mark set ${CT_MARK} accept
  }
}
`;
}

/** The comment that records a session in the registry (nft limits comments to 127 characters). */
export function registryComment(s: DnatSession): string {
  const cport = s.clientPort === undefined ? "*" : String(s.clientPort);
  return `${
    ruleTag(s.id, s.owner)
  } ${s.client.text} ${cport} ${s.proxy.text} ${s.proxyPort} ${s.server.text} ${s.serverPort}`;
}

/** Reads a registry comment back; undefined when it is not ours. */
export function parseRegistryComment(comment: string): InstalledSession | undefined {
  const [tag = "", client, cport, proxy, pport, server, sport, extra] = comment.split(" ");
  const owner = parseRuleTag(tag);
  if (!owner || extra !== undefined || !client || !proxy || !server) return undefined;
  if (!parseIp(client) || !parseIp(proxy) || !parseIp(server)) return undefined;
  const port = (
    text: string | undefined,
  ) => (text && /^\d{1,5}$/.test(text) ? Number(text) : undefined);
  const proxyPort = port(pport);
  const serverPort = port(sport);
  if (proxyPort === undefined || serverPort === undefined) return undefined;
  const clientPort = port(cport);
  return {
    ...owner,
    client,
    ...(clientPort !== undefined ? { clientPort } : {}),
    proxy,
    proxyPort,
    server,
    serverPort,
  };
}

/** A session's NAT elements: which map or set, its key, and its data. */
export interface NatElement {
  readonly set: "dnat_port" | "dnat_addr" | "flows";
  readonly key: string;
  readonly data?: string;
}

/** The NAT elements a session needs. */
export function natElements(s: InstalledSession): NatElement[] {
  const target = `${s.server} . ${s.serverPort}`;
  return [
    s.clientPort === undefined
      ? { set: "dnat_addr", key: `${s.client} . ${s.proxy} . ${s.proxyPort}`, data: target }
      : {
        set: "dnat_port",
        key: `${s.client} . ${s.clientPort} . ${s.proxy} . ${s.proxyPort}`,
        data: target,
      },
    { set: "flows", key: `${s.client} . ${s.server} . ${s.serverPort}` },
  ];
}

/** `add element …` for a registry slot or NAT element, with a fresh timeout. */
export function addLine(
  family: 4 | 6,
  element: NatElement | { set: "sessions"; key: string; comment: string },
): string {
  const comment = "comment" in element ? ` comment "${element.comment}"` : "";
  const data = "data" in element && element.data ? ` : ${element.data}` : "";
  return `add element ${
    nftFamily(family)
  } xferproxy ${element.set} { ${element.key} timeout ${ELEMENT_TIMEOUT_S}s${comment}${data} }`;
}

/** `delete element …`. */
export function deleteLine(family: 4 | 6, set: string, key: string): string {
  return `delete element ${nftFamily(family)} xferproxy ${set} { ${key} }`;
}

/** The registry slot of a session: from its UUID, probing past slots in use. */
export function chooseSlot(id: string, used: ReadonlySet<number>): number {
  let slot = (parseInt(id.slice(0, 8), 16) % 65535) + 1;
  for (let i = 0; i < 65535 && used.has(slot); i++) slot = (slot % 65535) + 1;
  if (used.has(slot)) throw new Error("the nftables session registry is full");
  return slot;
}

/** One registry element as `nft -j list set` shows it. */
export interface RegistryEntry {
  readonly slot: number;
  readonly session: InstalledSession;
}

/** Parses `nft -j list set <family> xferproxy sessions`. */
export function parseRegistry(json: string): RegistryEntry[] {
  const entries: RegistryEntry[] = [];
  const doc = JSON.parse(json) as { nftables?: Array<{ set?: { elem?: unknown[] } }> };
  for (const item of doc.nftables ?? []) {
    for (const elem of item.set?.elem ?? []) {
      const e = (elem as { elem?: { val?: unknown; comment?: string } }).elem;
      const session = e?.comment ? parseRegistryComment(e.comment) : undefined;
      if (session && typeof e?.val === "number") entries.push({ slot: e.val, session });
    }
  }
  return entries;
}

/** Keys present in a map or set, from `nft -j list map|set …` (concatenations joined with " . "). */
export function parseKeys(json: string): Set<string> {
  const keys = new Set<string>();
  const doc = JSON.parse(json) as { nftables?: Array<Record<string, { elem?: unknown[] }>> };
  for (const item of doc.nftables ?? []) {
    const body = item.map ?? item.set;
    for (const elem of body?.elem ?? []) {
      // Maps list [key, data] pairs; sets list the key alone. Keys may carry timeout/comment wrappers.
      const keyPart = Array.isArray(elem) ? elem[0] : elem;
      const wrapped = (keyPart as { elem?: { val?: unknown } }).elem?.val ?? keyPart;
      const concat = (wrapped as { concat?: unknown[] }).concat;
      keys.add(concat ? concat.map(String).join(" . ") : String(wrapped));
    }
  }
  return keys;
}
