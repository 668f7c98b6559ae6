/**
 * iptables rule planning, pure: sessions → iptables-restore text, and
 * iptables-save text → our rules. Rules are written exactly as iptables-save
 * prints them, so what we add can be deleted by the same text. Only our own
 * chains and the single jump into each are ever written.
 *
 * Per-packet cost does not grow with the sessions: each session owns two
 * rules in the nat PREROUTING chain, which conntrack shows only a flow's
 * first packet (mark the connection, then DNAT it); every later packet, both
 * ways, is accepted and masqueraded by one fixed rule each that matches the
 * mark. Nothing else carries the mark, so nothing else is accepted or
 * masqueraded.
 * @module
 */

import { SESSION_CT_MARK } from "../types.ts";
import type { DnatSession, InstalledSession, Owner } from "../types.ts";
import { parseRuleTag, ruleTag } from "../types.ts";

/** Our chains, the table each lives in, and the built-in chain that jumps to it. */
export const CHAINS = [
  { table: "nat", chain: "XFERPROXY-PRE", from: "PREROUTING" },
  { table: "nat", chain: "XFERPROXY-POST", from: "POSTROUTING" },
  { table: "filter", chain: "XFERPROXY-FWD", from: "FORWARD" },
] as const;

/** A table of iptables. */
export type Table = "nat" | "filter";

/** One of our rules: table, chain, and the rule text after `-A CHAIN `. */
export interface OurRule {
  readonly table: Table;
  readonly chain: string;
  readonly spec: string;
  readonly id: string;
  readonly owner: Owner;
}

/** The mark as iptables-save prints a match on it. */
const MARK = `0x${SESSION_CT_MARK.toString(16)}`;
const FLOWS_TAG = `-m comment --comment "xferproxy:session-flows"`;

/**
 * The rules every session shares, one per chain that sees every packet of a
 * flow (FORWARD) or acts on the flow as a whole (POSTROUTING).
 */
export const FIXED_RULES = [
  {
    table: "nat",
    chain: "XFERPROXY-POST",
    spec: `-m connmark --mark ${MARK} ${FLOWS_TAG} -j MASQUERADE`,
  },
  {
    table: "filter",
    chain: "XFERPROXY-FWD",
    spec: `-m conntrack --ctstate DNAT -m connmark --mark ${MARK} ${FLOWS_TAG} -j ACCEPT`,
  },
] as const;

function host(ip: DnatSession["client"]): string {
  return `${ip.text}/${ip.family === 4 ? 32 : 128}`;
}

/** The DNAT target: `server:port`, or the server alone when a span keeps its ports. */
function destination(s: DnatSession, port: number, span: boolean): string {
  const host = s.server.family === 6 ? `[${s.server.text}]` : s.server.text;
  if (span) return s.server.text;
  return `${host}:${port}`;
}

/** `port` or `low:high`, as iptables-save prints a port match. */
function portMatch(port: number, count: number): string {
  return count > 1 ? `${port}:${port + count - 1}` : String(port);
}

/**
 * The rules of one protocol of a session, in chain order: mark the new
 * flow, then DNAT it (DNAT ends the chain, so the mark must come first).
 */
function protocolRules(s: DnatSession, proto: "udp" | "tcp", serverPort: number): OurRule[] {
  const tag = `-m comment --comment "${ruleTag(s.id, s.owner)}"`;
  const count = proto === "udp" ? s.portCount : 1;
  const sport = s.clientPort === undefined ? "" : ` --sport ${s.clientPort}`;
  const match = `-s ${host(s.client)} -d ${host(s.proxy)} -p ${proto} -m ${proto}${sport} ` +
    `--dport ${portMatch(s.proxyPort, count)} ${tag}`;
  const base = { id: s.id, owner: s.owner, table: "nat", chain: "XFERPROXY-PRE" } as const;
  return [
    { ...base, spec: `${match} -j CONNMARK --set-xmark ${MARK}/0xffffffff` },
    {
      ...base,
      spec: `${match} -j DNAT --to-destination ${destination(s, serverPort, count > 1)}`,
    },
  ];
}

/** The session's rules in iptables-save form: UDP, and TCP too for forward sessions. */
export function sessionRules(s: DnatSession): OurRule[] {
  const udp = protocolRules(s, "udp", s.serverPort);
  return s.tcpServerPort === undefined
    ? udp
    : [...protocolRules(s, "tcp", s.tcpServerPort), ...udp];
}

/**
 * Rules of the plan before the fixed rules (one MASQUERADE and one ACCEPT per
 * session, matched on the conntrack original tuple): a proxy upgraded with
 * sessions live still holds them until they are converted.
 */
export function isLegacyRule(rule: OurRule): boolean {
  return rule.chain !== "XFERPROXY-PRE";
}

function isPortSpecific(r: OurRule): boolean {
  return r.chain === "XFERPROXY-PRE" && r.spec.includes(" --sport ");
}

/**
 * iptables-restore input: per table, `-D` lines then the new rules, one
 * COMMIT each. Port-specific rules go first in their chain and address-only
 * ones last, so a session that has learned its source port is never
 * shadowed by another session of the same client still learning; each
 * keeps its mark rule before its DNAT rule.
 */
export function restoreText(remove: readonly OurRule[], add: readonly OurRule[]): string {
  const out: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    const adding = add.filter((r) => r.table === table);
    // `-I 1` in reverse keeps the given order at the top of the chain.
    const inserted = adding.filter(isPortSpecific).reverse().map((r) =>
      `-I ${r.chain} 1 ${r.spec}`
    );
    const appended = adding.filter((r) => !isPortSpecific(r)).map((r) => `-A ${r.chain} ${r.spec}`);
    const lines = [
      ...remove.filter((r) => r.table === table).map((r) => `-D ${r.chain} ${r.spec}`),
      ...inserted,
      ...appended,
    ];
    if (lines.length) out.push(`*${table}`, ...lines, "COMMIT");
  }
  return out.length ? out.join("\n") + "\n" : "";
}

/**
 * Creates whichever of our chains, jumps and fixed rules are missing, given
 * current iptables-save output. Jumps go first in their built-in chain so
 * admins' own rules (a FORWARD DROP, say) cannot shadow session flows.
 * Undefined when all is in place. Existing chains are never redeclared:
 * with --noflush a declaration would flush them.
 */
export function ensureText(save: string): string | undefined {
  return perTable(save, (lines, chains) => [
    ...chains.filter((c) => !hasChain(lines, c.chain)).map((c) => `:${c.chain} - [0:0]`),
    ...chains.filter((c) => !hasJump(lines, c)).map((c) => `-I ${c.from} 1 -j ${c.chain}`),
    ...FIXED_RULES.filter((r) => chains.some((c) => c.chain === r.chain))
      .filter((r) => !lines.includes(`-A ${r.chain} ${r.spec}`))
      .map((r) => `-A ${r.chain} ${r.spec}`),
  ]);
}

/**
 * True when a new flow to the proxy would meet none of our DNAT rules, whatever they hold: our
 * PREROUTING chain or its jump is missing (an administrator's flush). Such a flow's conntrack
 * entry stays untranslated for as long as it keeps sending.
 */
export function preroutingUnhooked(save: string): boolean {
  const lines = splitTables(save).get("nat") ?? [];
  const pre = CHAINS[0];
  return !hasChain(lines, pre.chain) || !hasJump(lines, pre);
}

/** Removes our jumps and chains with whatever they still hold; nothing else. */
export function teardownText(save: string): string | undefined {
  return perTable(save, (lines, chains) => [
    ...chains.filter((c) => hasJump(lines, c)).map((c) => `-D ${c.from} -j ${c.chain}`),
    ...chains.filter((c) => hasChain(lines, c.chain)).flatMap((c) => [
      `-F ${c.chain}`,
      `-X ${c.chain}`,
    ]),
  ]);
}

type Chain = (typeof CHAINS)[number];

function hasChain(lines: readonly string[], chain: string): boolean {
  return lines.some((l) => l.startsWith(`:${chain} `));
}

function hasJump(lines: readonly string[], c: Chain): boolean {
  return lines.includes(`-A ${c.from} -j ${c.chain}`);
}

/** Restore text from per-table lines; undefined when no table needs any. */
function perTable(
  save: string,
  build: (lines: readonly string[], chains: readonly Chain[]) => string[],
): string | undefined {
  const tables = splitTables(save);
  const out: string[] = [];
  for (const table of ["nat", "filter"] as const) {
    const wanted = build(tables.get(table) ?? [], CHAINS.filter((c) => c.table === table));
    if (wanted.length) out.push(`*${table}`, ...wanted, "COMMIT");
  }
  return out.length ? out.join("\n") + "\n" : undefined;
}

/** Our rules in iptables-save output: rules in our chains that carry our tag. */
export function parseOurRules(save: string): OurRule[] {
  const rules: OurRule[] = [];
  for (const [table, lines] of splitTables(save)) {
    for (const line of lines) {
      const m = /^-A (XFERPROXY-(?:PRE|POST|FWD)) (.*)$/.exec(line);
      if (!m) continue;
      const tag = /--comment "?([^" ]+)"?/.exec(m[2] as string)?.[1];
      const parsed = tag ? parseRuleTag(tag) : undefined;
      if (!parsed) continue;
      rules.push({ table: table as Table, chain: m[1] as string, spec: m[2] as string, ...parsed });
    }
  }
  return rules;
}

/** Sessions, read back from their DNAT rules. */
export function sessionsOf(rules: readonly OurRule[]): InstalledSession[] {
  const sessions: InstalledSession[] = [];
  const tcpPorts = new Map<string, number>();
  const pre = (proto: string) =>
    rules.filter((r) =>
      r.chain === "XFERPROXY-PRE" && r.spec.includes(` -p ${proto} `) &&
      r.spec.includes(" -j DNAT ")
    );
  for (const rule of pre("tcp")) {
    const port = /--to-destination \S*:(\d+)$/.exec(rule.spec)?.[1];
    if (port) tcpPorts.set(rule.id, Number(port));
  }
  for (const rule of pre("udp")) {
    const field = (flag: string) => new RegExp(`${flag} (\\S+)`).exec(rule.spec)?.[1];
    const [low = "", high] = (field("--dport") ?? "").split(":");
    const proxyPort = Number(low);
    const portCount = high === undefined ? 1 : Number(high) - proxyPort + 1;
    const to = field("--to-destination") ?? "";
    const withPort = /^\[?([^\]]+?)\]?:(\d+)$/.exec(to);
    const sport = field("--sport");
    sessions.push({
      id: rule.id,
      owner: rule.owner,
      client: (field("-s") ?? "").replace(/\/\d+$/, ""),
      ...(sport ? { clientPort: Number(sport) } : {}),
      proxy: (field("-d") ?? "").replace(/\/\d+$/, ""),
      proxyPort,
      portCount,
      // Without a port the DNAT keeps the one the client used: the span maps one to one.
      server: withPort ? withPort[1] as string : to,
      serverPort: withPort ? Number(withPort[2]) : proxyPort,
      ...(tcpPorts.has(rule.id) ? { tcpServerPort: tcpPorts.get(rule.id) as number } : {}),
    });
  }
  return sessions;
}

/**
 * True when two iptables-save outputs hold the same tables, chains and rules, line for line;
 * they may differ in their comment lines (each names the time of the save) and in the packet
 * counters of chains. What this file reads from a save never looks at either. Compared in
 * place: the DNAT service asks every few seconds, and a thousand sessions' rules are half a MB.
 */
export function sameRules(a: string, b: string): boolean {
  let i = 0;
  let j = 0;
  for (;;) {
    i = skipComments(a, i);
    j = skipComments(b, j);
    if (i >= a.length || j >= b.length) return i >= a.length && j >= b.length;
    const endA = ruleEnd(a, i);
    const endB = ruleEnd(b, j);
    if (endA - i !== endB - j) return false;
    for (let k = 0; k < endA - i; k++) {
      if (a.charCodeAt(i + k) !== b.charCodeAt(j + k)) return false;
    }
    i = lineEnd(a, i) + 1;
    j = lineEnd(b, j) + 1;
  }
}

function lineEnd(text: string, from: number): number {
  const end = text.indexOf("\n", from);
  return end === -1 ? text.length : end;
}

/** Where the line at `from` starts past its comment lines. */
function skipComments(text: string, from: number): number {
  while (from < text.length && text.charCodeAt(from) === 0x23 /* # */) {
    from = lineEnd(text, from) + 1;
  }
  return from;
}

/** Where the line at `from` ends, a chain's ` [packets:bytes]` left out. */
function ruleEnd(text: string, from: number): number {
  const end = lineEnd(text, from);
  if (text.charCodeAt(from) !== 0x3a /* : */ || text.charCodeAt(end - 1) !== 0x5d /* ] */) {
    return end;
  }
  const counters = text.lastIndexOf(" [", end);
  return counters > from ? counters : end;
}

function splitTables(save: string): Map<string, string[]> {
  const tables = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const raw of save.split("\n")) {
    const line = raw.trim();
    if (line.startsWith("*")) {
      current = [];
      tables.set(line.slice(1), current);
    } else if (line === "COMMIT") {
      current = undefined;
    } else if (current && line && !line.startsWith("#")) {
      current.push(line);
    }
  }
  return tables;
}
