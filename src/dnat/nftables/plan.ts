/**
 * nftables planning, pure. Our own table per family (`ip xferproxy`,
 * `ip6 xferproxy`): NAT maps, UDP and TCP (forward sessions carry their SSH
 * port), whose elements derive from the sessions; elements several sessions
 * need (one client's sessions to one proxy port) are shared. Elements time out unless refreshed, so even if the
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

/**
 * The table definition, created once when missing. Our own DNAT marks the
 * flow's conntrack entry (nat chains see only a flow's first packet), and
 * every later packet, both ways, is accepted and masqueraded by one rule
 * that matches the mark: a flow something else translates to the same
 * server and port carries no mark, so it is neither accepted nor
 * masqueraded as a session's.
 */
export function tableText(family: 4 | 6): string {
  const f = nftFamily(family);
  const addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const chains = chainRules(family);
  const body = (rules: readonly string[]) => rules.map((r) => `\n    ${r}`).join("");
  return `table ${f} xferproxy {
  map dnat_port {
    type ${addr} . inet_service . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }
  map dnat_addr {
    type ${addr} . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }
${TCP_MAP(addr)}
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;${body(chains.prerouting)}
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;${body(chains.postrouting)}
  }
  chain forward {
    type filter hook forward priority filter - 10; policy accept;${body(chains.forward)}
  }
}
`;
}

const TCP_MAP = (addr: string) =>
  `  map dnat_tcp {
    type ${addr} . ${addr} . inet_service : ${addr} . inet_service
    flags timeout
  }`;

/**
 * Our rules, by chain. Each DNAT rule marks only what its own map translates
 * (the key is looked up, then the mark set, then the translation made), so
 * the mark means "translated by a session of ours".
 */
function chainRules(family: 4 | 6) {
  const ip = family === 4 ? "ip" : "ip6";
  const dnat = (proto: "udp" | "tcp", key: string, map: string) =>
    `meta l4proto ${proto} ${key} @${map} ct mark set ${CT_MARK} dnat ${ip} to ${key} map @${map}`;
  return {
    prerouting: [
      dnat("udp", `${ip} saddr . udp sport . ${ip} daddr . udp dport`, "dnat_port"),
      dnat("udp", `${ip} saddr . ${ip} daddr . udp dport`, "dnat_addr"),
      dnat("tcp", `${ip} saddr . ${ip} daddr . tcp dport`, "dnat_tcp"),
    ],
    postrouting: [`ct status dnat ct mark ${CT_MARK} masquerade`],
    forward: [`ct status dnat ct mark ${CT_MARK} accept`],
  };
}

/**
 * Converts a table an earlier version made, in one transaction: adds the TCP
 * map where it lacks it, and replaces every rule of our chains with the
 * current ones. Live flows keep forwarding: their NAT bindings live in
 * conntrack, not in rules, and the earlier forward rules marked every packet
 * of a session flow, so those flows already carry the mark the new rules
 * match. The earlier flow sets (`flows`, `tcp_flows`) stay, unreferenced, so
 * a process of that version still running (a forward daemon not yet
 * restarted) can still write them; their elements expire.
 */
export function upgradeText(family: 4 | 6): string {
  const f = nftFamily(family);
  const addr = family === 4 ? "ipv4_addr" : "ipv6_addr";
  const chains = chainRules(family);
  return [
    `table ${f} xferproxy {`,
    TCP_MAP(addr),
    "}",
    ...(["prerouting", "postrouting", "forward"] as const).flatMap((chain) => [
      `flush chain ${f} xferproxy ${chain}`,
      ...chains[chain].map((r) => `add rule ${f} xferproxy ${chain} ${r}`),
    ]),
  ].join("\n") + "\n";
}

/**
 * True when a listing of our prerouting chain shows the current rules: TCP,
 * and the mark set at our DNAT (an earlier version marked in forward).
 */
export function isCurrent(prerouting: string): boolean {
  return prerouting.includes("@dnat_tcp") && prerouting.includes("ct mark set");
}

/** Our maps, each listed by `reconcile`. */
export const NAT_SETS = ["dnat_port", "dnat_addr", "dnat_tcp"] as const;

/** A map of ours. */
export type NatSet = typeof NAT_SETS[number];

/** One element of our maps. */
export interface NatElement {
  readonly set: NatSet;
  /** The key as `nft` prints it: values joined by " . ". */
  readonly key: string;
  /** Where the key's flows go: server and port. */
  readonly data: string;
}

/** The elements a session needs: one DNAT entry per port of its span, and its TCP port's. */
export function natElements(s: DnatSession): NatElement[] {
  const elements: NatElement[] = [];
  for (let j = 0; j < s.portCount; j++) {
    const proxyPort = s.proxyPort + j;
    const data = `${s.server.text} . ${s.serverPort + j}`;
    elements.push(
      s.clientPort === undefined
        ? { set: "dnat_addr", key: `${s.client.text} . ${s.proxy.text} . ${proxyPort}`, data }
        : {
          set: "dnat_port",
          key: `${s.client.text} . ${s.clientPort} . ${s.proxy.text} . ${proxyPort}`,
          data,
        },
    );
  }
  if (s.tcpServerPort !== undefined) {
    elements.push({
      set: "dnat_tcp",
      key: `${s.client.text} . ${s.proxy.text} . ${s.proxyPort}`,
      data: `${s.server.text} . ${s.tcpServerPort}`,
    });
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
  return `add element ${
    nftFamily(family)
  } xferproxy ${e.set} { ${e.key} timeout ${ELEMENT_TIMEOUT_S}s : ${e.data} }`;
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
 * Element ids (`set|key`, as `elementId`) of our maps, from one `nft -j list table …` of our
 * table (concatenations joined with " . "); other maps and sets (an earlier version's flow
 * sets), chains and rules are skipped.
 */
export function parseElementIds(json: string): Set<string> {
  const ids = new Set<string>();
  const ours = new Set<string>(NAT_SETS);
  const doc = JSON.parse(json) as {
    nftables?: Array<Record<string, { name?: string; elem?: unknown[] }>>;
  };
  for (const item of doc.nftables ?? []) {
    const body = item.map;
    if (!body?.name || !ours.has(body.name)) continue;
    for (const elem of body.elem ?? []) {
      // Maps list [key, data] pairs. Keys may carry timeout/comment wrappers.
      const keyPart = Array.isArray(elem) ? elem[0] : elem;
      const wrapped = (keyPart as { elem?: { val?: unknown } }).elem?.val ?? keyPart;
      const concat = (wrapped as { concat?: unknown[] }).concat;
      ids.add(`${body.name}|${concat ? concat.map(String).join(" . ") : String(wrapped)}`);
    }
  }
  return ids;
}
