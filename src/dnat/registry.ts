/**
 * The registry: every session the DNAT service or a privileged call
 * registered, with its owner process, what its closing line names, and its
 * UDP (and TCP) forwarding if it has any. It is the desired state the
 * service reconciles the kernel against and the record of whose sessions
 * are whose. It lives in a root-only directory; this module only converts
 * it. Pure.
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";
import type { DnatSession, Owner } from "./types.ts";

/** One end of a TCP connection. */
export interface TcpEnd {
  readonly ip: IpAddress;
  readonly port: number;
}

/** A session's forwarding: what the backends install, and whether its source port is to be learned. */
export interface Forwarding {
  readonly session: DnatSession;
  readonly filtering: boolean;
}

/** One registered session. */
export interface RegistryEntry {
  /** Issued at registration; every rule of the session carries it. */
  readonly id: string;
  readonly owner: Owner;
  /** The uid that registered it (the session's user; 0 for root). */
  readonly uid: number;
  /** 1-based reverse rule; 0 for a session of no rule (the forward daemon's). */
  readonly rule: number;
  /** When it was registered (ms since the epoch). */
  readonly created: number;
  /** The proxy user as the session named itself, for the closing line. */
  readonly user?: string;
  /** The internal server, `ip:port`, for the closing line. */
  readonly upstream?: string;
  /** The client's SSH connection to the proxy, as the kernel showed it. */
  readonly ssh?: { readonly client: TcpEnd; readonly proxy: TcpEnd };
  readonly forwarding?: Forwarding;
  /**
   * When removing its forwarding first failed (ms since the epoch): it stays
   * known, is installed and refreshed no more, and its owner (or, once the
   * owner is gone, the DNAT service) tries again until it goes.
   */
  readonly removing?: number;
}

/**
 * The rule of the forward daemon's sessions: they belong to the daemon,
 * which removes them; others reap them only once it has ended.
 */
export const FORWARD_RULE = 0;

/** A registry entry that forwards. */
export type ForwardingEntry = RegistryEntry & { readonly forwarding: Forwarding };

/** The whole registry. */
export interface Registry {
  readonly entries: readonly RegistryEntry[];
}

/** An empty registry. */
export function emptyRegistry(): Registry {
  return { entries: [] };
}

/** The entries that forward. */
export function forwardingEntries(registry: Registry): ForwardingEntry[] {
  return registry.entries.filter((e): e is ForwardingEntry => e.forwarding !== undefined);
}

/** The forwarded sessions, as the backends take them: those being removed no longer count. */
export function forwardedSessions(registry: Registry): DnatSession[] {
  return forwardingEntries(registry).filter((e) => e.removing === undefined).map((e) =>
    e.forwarding.session
  );
}

/**
 * One entry as stored: flat arrays, because a privileged call parses the
 * whole registry on every session start and arrays of scalars parse fastest.
 */
type StoredEntry = [
  id: string,
  pid: number,
  start: number,
  uid: number,
  rule: number,
  created: number,
  user: string,
  upstream: string,
  ssh: 0 | [client: string, clientPort: number, proxy: string, proxyPort: number],
  forwarding: 0 | StoredForwarding,
  removing?: number,
];

type StoredForwarding = [
  filtering: 0 | 1,
  client: string,
  clientPort: number,
  proxy: string,
  proxyPort: number,
  portCount: number,
  server: string,
  serverPort: number,
  tcpServerPort: number,
];

/** The registry as stored (version 3). */
export function serializeRegistry(registry: Registry): string {
  const entries = registry.entries.map((e): StoredEntry => {
    const f = e.forwarding;
    const s = f?.session;
    const stored: StoredEntry = [
      e.id,
      e.owner.pid,
      e.owner.coarse ? e.owner.start / 1000 : e.owner.start,
      e.uid,
      e.rule,
      e.created,
      e.user ?? "",
      e.upstream ?? "",
      e.ssh ? [e.ssh.client.ip.text, e.ssh.client.port, e.ssh.proxy.ip.text, e.ssh.proxy.port] : 0,
      f && s
        ? [
          f.filtering ? 1 : 0,
          s.client.text,
          s.clientPort ?? 0,
          s.proxy.text,
          s.proxyPort,
          s.portCount,
          s.server.text,
          s.serverPort,
          s.tcpServerPort ?? 0,
        ]
        : 0,
    ];
    if (e.removing !== undefined) stored.push(e.removing);
    return stored;
  });
  return `{"version":3,"entries":[\n${entries.map((e) => JSON.stringify(e)).join(",\n")}\n]}\n`;
}

const isInt = (v: unknown, min = 0, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= min && v <= max;

/** Only characters of IP literals: nothing that could change a netfilter command. */
const ADDRESS_SHAPE = /^[0-9a-f.:]{2,39}$/;

/**
 * An address from the registry, which only root writes and only as canonical
 * text: its shape is checked at once, its bytes parsed on first use. Every
 * session start without the service reads the whole registry in a fresh
 * process, where parsing a thousand addresses up front would cost more than
 * the netfilter change.
 */
function storedAddress(value: unknown): IpAddress | undefined {
  if (typeof value !== "string" || !ADDRESS_SHAPE.test(value)) return undefined;
  let parsed: IpAddress | undefined;
  return {
    family: value.includes(":") ? 6 : 4,
    text: value,
    get bytes() {
      parsed ??= parseIp(value);
      return parsed?.bytes ?? [];
    },
  };
}

/** Starts below this are whole seconds (an earlier version's, ps's lstart): 1973 in milliseconds. */
const MS_STARTS_FROM = 1e11;

/** An owner as stored: start in milliseconds, or whole seconds for one an earlier version recorded. */
function storedOwner(pid: number, start: number, version: number): Owner {
  return version < 3 || start < MS_STARTS_FROM
    ? { pid, start: start * 1000, coarse: true }
    : { pid, start };
}

function toForwarding(
  raw: unknown,
  id: string,
  owner: Owner,
): Forwarding | undefined | null {
  if (raw === 0) return undefined;
  if (!Array.isArray(raw) || raw.length !== 9) return null;
  const f = raw as unknown[];
  const filtering = f[0], clientPort = f[2], proxyPort = f[4], count = f[5], serverPort = f[7];
  const tcpServerPort = f[8];
  const client = storedAddress(f[1]);
  const proxy = storedAddress(f[3]);
  const server = storedAddress(f[6]);
  if (
    !client || !proxy || !server || (filtering !== 0 && filtering !== 1) ||
    !isInt(clientPort, 0, 65535) || !isInt(proxyPort, 1, 65535) || !isInt(count, 1, 1000) ||
    !isInt(serverPort, 1, 65535) || !isInt(tcpServerPort, 0, 65535)
  ) return null;
  const session: DnatSession = {
    id,
    owner,
    client,
    ...(clientPort === 0 ? {} : { clientPort }),
    proxy,
    proxyPort,
    portCount: count,
    server,
    serverPort,
    ...(tcpServerPort === 0 ? {} : { tcpServerPort }),
  };
  return { session, filtering: filtering === 1 };
}

function toSsh(raw: unknown): RegistryEntry["ssh"] | null {
  if (raw === 0) return undefined;
  if (!Array.isArray(raw) || raw.length !== 4) return null;
  const client = storedAddress(raw[0]);
  const proxy = storedAddress(raw[2]);
  if (!client || !proxy || !isInt(raw[1], 1, 65535) || !isInt(raw[3], 1, 65535)) return null;
  return { client: { ip: client, port: raw[1] }, proxy: { ip: proxy, port: raw[3] } };
}

const text = (v: unknown, max: number): string | undefined =>
  typeof v === "string" && v.length <= max ? v : undefined;

function toEntry(raw: unknown, version: number): RegistryEntry | undefined {
  if (!Array.isArray(raw)) return undefined;
  // Indexed reads, not destructuring: a fresh process runs this uncompiled, where the
  // iterator protocol costs more than everything else here.
  const e = raw as unknown[];
  if (version < 3) return legacyEntry(e);
  if (e.length !== 10 && e.length !== 11) return undefined;
  const id = e[0], pid = e[1], start = e[2], uid = e[3], rule = e[4], created = e[5];
  const user = text(e[6], 256), upstream = text(e[7], 64);
  if (
    typeof id !== "string" || !isInt(pid, 1) || !isInt(start) || !isInt(uid) ||
    !isInt(rule, 0) || !isInt(created) || user === undefined || upstream === undefined
  ) return undefined;
  const removing = e[10];
  if (removing !== undefined && !isInt(removing)) return undefined;
  const owner = storedOwner(pid, start, version);
  const ssh = toSsh(e[8]);
  const forwarding = toForwarding(e[9], id, owner);
  if (ssh === null || forwarding === null) return undefined;
  return {
    id,
    owner,
    uid,
    rule,
    created,
    ...(user ? { user } : {}),
    ...(upstream ? { upstream } : {}),
    ...(ssh ? { ssh } : {}),
    ...(forwarding ? { forwarding } : {}),
    ...(removing !== undefined ? { removing } : {}),
  };
}

/** A version 2 entry (every one forwarded UDP): kept across an upgrade with sessions live. */
function legacyEntry(e: unknown[]): RegistryEntry | undefined {
  if (e.length !== 14) return undefined;
  const id = e[0], pid = e[1], start = e[2], uid = e[3], rule = e[4], created = e[6];
  if (
    typeof id !== "string" || !isInt(pid, 1) || !isInt(start) || !isInt(uid) ||
    !isInt(rule, 1) || !isInt(created)
  ) return undefined;
  const owner = storedOwner(pid, start, 2);
  const forwarding = toForwarding(
    [e[5], e[7], e[8], e[9], e[10], e[11], e[12], e[13], 0],
    id,
    owner,
  );
  if (!forwarding) return undefined;
  return { id, owner, uid, rule, created, forwarding };
}

/** Reads a stored registry; entries that do not parse are dropped and counted. */
export function parseRegistry(text: string): ParsedRegistry {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    return { registry: emptyRegistry(), dropped: 1 };
  }
  const raw = (doc as { entries?: unknown })?.entries;
  const version = (doc as { version?: unknown })?.version;
  if (!Array.isArray(raw) || (version !== 2 && version !== 3)) {
    return { registry: emptyRegistry(), dropped: 1 };
  }
  const entries = raw.map((e) => toEntry(e, version)).filter((e): e is RegistryEntry =>
    e !== undefined
  );
  return { registry: { entries }, dropped: raw.length - entries.length };
}

/** What a stored registry parses to: its entries, and how many did not parse. */
export interface ParsedRegistry {
  readonly registry: Registry;
  readonly dropped: number;
}

/**
 * Parses stored registries, giving back the very same result while the stored bytes stay the
 * same. The DNAT service reads the registry every round; parsed anew each time, a thousand
 * sessions were megabytes of short-lived objects a second, which grew its heap by tens of MiB.
 * The result is shared, so no caller may change it (its types are read-only).
 */
export function registryReader(): (stored: Uint8Array) => ParsedRegistry {
  // The BOM kept, as Deno.readTextFile keeps it: such a file does not parse, as before.
  const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
  let last: { stored: Uint8Array; parsed: ParsedRegistry } | undefined;
  return (stored) => {
    if (last && sameBytes(last.stored, stored)) return last.parsed;
    // A copy: the caller may read the next registry into the same buffer.
    last = { stored: stored.slice(), parsed: parseRegistry(decoder.decode(stored)) };
    return last.parsed;
  };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The registry without the given sessions. */
export function withoutSessions(registry: Registry, ids: ReadonlySet<string>): Registry {
  return { entries: registry.entries.filter((e) => !ids.has(e.id)) };
}

/** The registry with one entry replaced (same session id). */
export function withEntry(registry: Registry, entry: RegistryEntry): Registry {
  const others = registry.entries.filter((e) => e.id !== entry.id);
  return { entries: [...others, entry] };
}

/** The entry with its forwarding narrowed (or otherwise replaced). */
export function withForwarding(entry: ForwardingEntry, session: DnatSession): ForwardingEntry {
  return { ...entry, forwarding: { ...entry.forwarding, session } };
}
