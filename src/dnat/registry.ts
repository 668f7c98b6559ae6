/**
 * The DNAT registry: every reverse session with UDP forwarding, as the
 * privileged call recorded it. It is the desired state the DNAT service
 * reconciles the kernel against (rules a firewall reload dropped come back)
 * and the record of whose sessions are whose. It lives in a root-only
 * directory; this module only converts it. Pure.
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";
import type { DnatSession } from "./types.ts";

/** One registered session. */
export interface RegistryEntry {
  readonly session: DnatSession;
  /** The uid that registered it (the sudo caller; 0 for root). */
  readonly uid: number;
  readonly rule: number;
  /** The client's source port is to be learned. */
  readonly filtering: boolean;
  /** When it was registered (ms since the epoch). */
  readonly created: number;
}

/** The whole registry. */
export interface Registry {
  readonly entries: readonly RegistryEntry[];
}

/** An empty registry. */
export function emptyRegistry(): Registry {
  return { entries: [] };
}

/**
 * One entry as stored: a flat array, because a privileged call parses the
 * whole registry on every session start and arrays of scalars parse fastest.
 */
type StoredEntry = [
  id: string,
  pid: number,
  start: number,
  uid: number,
  rule: number,
  filtering: 0 | 1,
  created: number,
  client: string,
  clientPort: number,
  proxy: string,
  proxyPort: number,
  portCount: number,
  server: string,
  serverPort: number,
];

/** The registry as stored (version 2). */
export function serializeRegistry(registry: Registry): string {
  const entries = registry.entries.map((e): StoredEntry => {
    const s = e.session;
    return [
      s.id,
      s.owner.pid,
      s.owner.start,
      e.uid,
      e.rule,
      e.filtering ? 1 : 0,
      e.created,
      s.client.text,
      s.clientPort ?? 0,
      s.proxy.text,
      s.proxyPort,
      s.portCount,
      s.server.text,
      s.serverPort,
    ];
  });
  return `{"version":2,"entries":[\n${entries.map((e) => JSON.stringify(e)).join(",\n")}\n]}\n`;
}

const isInt = (v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

function toEntry(
  raw: unknown,
  ip: (text: unknown) => IpAddress | undefined,
): RegistryEntry | undefined {
  if (!Array.isArray(raw) || raw.length !== 14) return undefined;
  // Indexed reads, not destructuring: a fresh process runs this uncompiled, where the
  // iterator protocol costs more than everything else here.
  const e = raw as unknown[];
  const id = e[0], pid = e[1], start = e[2], uid = e[3], rule = e[4], filtering = e[5];
  const created = e[6], clientPort = e[8], proxyPort = e[10], count = e[11], serverPort = e[13];
  const client = ip(e[7]);
  const proxy = ip(e[9]);
  const server = ip(e[12]);
  if (
    typeof id !== "string" || !client || !proxy || !server || !isInt(pid, 1) || !isInt(start) ||
    !isInt(uid) || !isInt(rule, 1) || (filtering !== 0 && filtering !== 1) || !isInt(created) ||
    !isInt(clientPort, 0, 65535) || !isInt(proxyPort, 1, 65535) || !isInt(count, 1, 1000) ||
    !isInt(serverPort, 1, 65535)
  ) return undefined;
  const session: DnatSession = clientPort === 0
    ? { id, owner: { pid, start }, client, proxy, proxyPort, portCount: count, server, serverPort }
    : {
      id,
      owner: { pid, start },
      client,
      clientPort,
      proxy,
      proxyPort,
      portCount: count,
      server,
      serverPort,
    };
  return { session, uid, rule, filtering: filtering === 1, created };
}

/** Only characters of IP literals: nothing that could change a netfilter command. */
const ADDRESS_SHAPE = /^[0-9a-f.:]{2,39}$/;

/**
 * An address from the registry, which only root writes and only as canonical
 * text: its shape is checked at once, its bytes parsed on first use. Every
 * session start reads the whole registry in a fresh process, where parsing a
 * thousand addresses up front would cost more than the netfilter change.
 */
function storedAddress(text: string): IpAddress | undefined {
  if (!ADDRESS_SHAPE.test(text)) return undefined;
  let parsed: IpAddress | undefined;
  return {
    family: text.includes(":") ? 6 : 4,
    text,
    get bytes() {
      parsed ??= parseIp(text);
      return parsed?.bytes ?? [];
    },
  };
}

/** Reads a stored registry; entries that do not parse are dropped and counted. */
export function parseRegistry(text: string): { registry: Registry; dropped: number } {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { registry: emptyRegistry(), dropped: 1 };
  }
  const raw = (doc as { entries?: unknown })?.entries;
  if (!Array.isArray(raw)) return { registry: emptyRegistry(), dropped: 1 };
  const ip = (value: unknown) => (typeof value === "string" ? storedAddress(value) : undefined);
  const entries = raw.map((e) => toEntry(e, ip)).filter((e): e is RegistryEntry => e !== undefined);
  return { registry: { entries }, dropped: raw.length - entries.length };
}

/** The registry without the given sessions. */
export function withoutSessions(registry: Registry, ids: ReadonlySet<string>): Registry {
  return { entries: registry.entries.filter((e) => !ids.has(e.session.id)) };
}

/** The registry with one entry replaced (same session id). */
export function withEntry(registry: Registry, entry: RegistryEntry): Registry {
  const others = registry.entries.filter((e) => e.session.id !== entry.session.id);
  return { entries: [...others, entry] };
}
