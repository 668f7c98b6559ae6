/**
 * What the DNAT core installs: one session's UDP (and, in forward mode,
 * TCP) forwarding, and the process it belongs to.
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";
import type { CommandRunner } from "../process/runner.ts";

/**
 * The process a session's rules belong to: pid and start time (milliseconds
 * since the epoch, 10 ms resolution, from /proc), so a pid reused by
 * another process never keeps them.
 */
export interface Owner {
  readonly pid: number;
  readonly start: number;
  /** Recorded by an earlier version in whole seconds: compare seconds only. */
  readonly coarse?: boolean;
}

/** True when a process started at `start` (ms) is this owner. */
export function sameStart(owner: Owner, start: number): boolean {
  return owner.coarse ? Math.floor(start / 1000) * 1000 === owner.start : start === owner.start;
}

/**
 * One session's forwarding: client → proxy:proxyPort+j becomes
 * server:serverPort+j for j < portCount.
 */
export interface DnatSession {
  /** Session UUID; every rule carries it in its comment. */
  readonly id: string;
  readonly owner: Owner;
  readonly client: IpAddress;
  /** Set once source-port filtering has learned the client's port. */
  readonly clientPort?: number;
  readonly proxy: IpAddress;
  readonly proxyPort: number;
  /** Consecutive ports covered, mapped one to one; more than 1 only when proxy and server ports are equal. */
  readonly portCount: number;
  readonly server: IpAddress;
  readonly serverPort: number;
  /** Forward sessions also carry TCP (the SSH port): proxyPort → server:tcpServerPort. */
  readonly tcpServerPort?: number;
}

/** A session as found in the kernel's rules (addresses as text). */
export interface InstalledSession {
  readonly id: string;
  readonly owner: Owner;
  readonly client: string;
  readonly clientPort?: number;
  readonly proxy: string;
  readonly proxyPort: number;
  readonly portCount: number;
  readonly server: string;
  readonly serverPort: number;
  readonly tcpServerPort?: number;
}

/** A session as listings report it (addresses as text). */
export function toInstalled(s: DnatSession): InstalledSession {
  return {
    id: s.id,
    owner: s.owner,
    client: s.client.text,
    ...(s.clientPort !== undefined ? { clientPort: s.clientPort } : {}),
    proxy: s.proxy.text,
    proxyPort: s.proxyPort,
    portCount: s.portCount,
    server: s.server.text,
    serverPort: s.serverPort,
    ...(s.tcpServerPort !== undefined ? { tcpServerPort: s.tcpServerPort } : {}),
  };
}

/** A listed session with its addresses parsed; undefined when one does not parse. */
export function fromInstalled(s: InstalledSession): DnatSession | undefined {
  const client = parseIp(s.client);
  const proxy = parseIp(s.proxy);
  const server = parseIp(s.server);
  return client && proxy && server ? { ...s, client, proxy, server } : undefined;
}

/** `ip:port` or `ip:low-high` of one side of a session. */
export function formatPorts(ip: IpAddress | string, port: number, count: number): string {
  const text = typeof ip === "string" ? ip : ip.text;
  const host = text.includes(":") ? `[${text}]` : text;
  return count > 1 ? `${host}:${port}-${port + count - 1}` : `${host}:${port}`;
}

/**
 * The conntrack mark session flows carry, whatever the backend: the fixed
 * forward and masquerade rules match it, and so can an administrator's own
 * firewall ("xp" in ASCII, then zeros).
 */
export const SESSION_CT_MARK = 0x78700000;

/**
 * How often the owners of expiring kernel state (the DNAT service, the
 * forward daemon) refresh it; a backend's state must outlive a few missed
 * refreshes.
 */
export const REFRESH_SECONDS = 30;

/**
 * The comment tag on every rule: `xferproxy:<session-uuid>:<owner-pid>:<owner-start>`,
 * the start in milliseconds (whole seconds for an owner an earlier version recorded).
 */
export function ruleTag(id: string, owner: Owner): string {
  return `xferproxy:${id}:${owner.pid}:${owner.coarse ? owner.start / 1000 : owner.start}`;
}

const TAG =
  /^xferproxy:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,10}):(\d{1,14})$/;

/** Starts below this are whole seconds (an earlier version's tags): 1973 in milliseconds. */
const MS_STARTS_FROM = 1e11;

/** Parses a rule tag; undefined when it is not ours. */
export function parseRuleTag(text: string): { id: string; owner: Owner } | undefined {
  const m = TAG.exec(text);
  if (!m) return undefined;
  const pid = Number(m[2]);
  const start = Number(m[3]);
  const owner = start < MS_STARTS_FROM
    ? { pid, start: start * 1000, coarse: true }
    : { pid, start };
  return { id: m[1] as string, owner };
}

/** What `reconcile` changed, by session id. */
export interface Reconciled {
  /** Sessions whose rules were missing (a firewall reload dropped them). */
  readonly repaired: readonly string[];
  /** Sessions whose rules an earlier version wrote, now in the current form. */
  readonly converted: readonly string[];
  /**
   * Sessions whose rules were in place but out of reach: our chains or their jumps had gone (an
   * administrator's flush), and were put back.
   */
  readonly rehooked?: readonly string[];
}

/**
 * What a backend can do, declared beside it: the core asks these, never a
 * backend's name (as firewalld's backends carry their capability fields).
 */
export interface BackendCapabilities {
  /** Forwards TCP as well as UDP: forward sessions carry their SSH port on the same proxy port. */
  readonly tcp: boolean;
  /** What it installs carries each session's tag (id and owner), so the kernel says whose it is. */
  readonly tagging: boolean;
  /** Sessions can be read back from the kernel alone: kernel-only rows of `dnat list`, orphans. */
  readonly listing: boolean;
  /** What it installs expires unless `refresh` keeps it, so nothing outlives whoever refreshes it. */
  readonly expiring: boolean;
}

/** Runs nftables transactions (the `nft -f` language); returns what they print. */
export interface NftRunner {
  /** "libnftables PATH" or "the nft command". */
  readonly via: string;
  /** @throws {NetfilterError} when nftables refuses them */
  run(commands: string, options?: { json?: boolean }): Promise<string>;
}

/** What `createBackend` gives a backend to reach the kernel with. */
export interface BackendOptions {
  /** Runs the backend's programs. */
  readonly runner: CommandRunner;
  /**
   * Opens nftables transactions inside this process (libnftables), for the
   * long-lived service; without it, the nft command. Only the nftables
   * backend calls it.
   */
  readonly nft?: () => NftRunner;
}

/** A netfilter front end. Mutating methods are called under the DNAT lock. */
export interface DnatBackend {
  /** Its name in `<dnat_backend>` and in `BACKENDS`. */
  readonly name: string;
  /** How changes reach the kernel, for the service's start-up line. */
  readonly via: string;
  readonly capabilities: BackendCapabilities;
  /** The program it cannot work without: `check system` looks for it and shows its version. */
  readonly tool: string;
  /** Libraries the DNAT service loads instead of running `tool`, where present (`check system`). */
  readonly libraries?: readonly string[];
  /** Creates our chains/table if missing; never touches anything else. */
  ensureReady(family: 4 | 6): Promise<void>;
  /** Installs sessions' rules, one transaction per family. */
  add(sessions: readonly DnatSession[]): Promise<void>;
  /**
   * Removes sessions' rules. `remaining` are the sessions that stay: kernel
   * state they share with the removed ones (nftables elements) is kept.
   */
  remove(sessions: readonly DnatSession[], remaining: readonly DnatSession[]): Promise<void>;
  /** Atomically replaces a session's rules by the narrowed ones (source port learned). */
  replace(
    before: DnatSession,
    after: DnatSession,
    remaining: readonly DnatSession[],
  ): Promise<void>;
  /**
   * Makes the kernel hold exactly what `wanted` needs of what is ours: puts
   * back what a firewall reload dropped, converts rules an earlier version
   * wrote, and says which sessions needed either. Tagged rules of sessions
   * not in `wanted` are left for `list` to report.
   */
  reconcile(wanted: readonly DnatSession[]): Promise<Reconciled>;
  /** Sessions the kernel's rules name (iptables); nftables elements carry no owner, so none. */
  list(): Promise<InstalledSession[]>;
  /** Removes tagged rules by session id, whatever they hold (orphans); returns what went. */
  removeTagged(ids: ReadonlySet<string>): Promise<InstalledSession[]>;
  /** Keeps sessions' kernel state alive (nftables element timeouts); a no-op for iptables. */
  refresh(sessions: readonly DnatSession[]): Promise<void>;
  /** Removes our chains or table (reap --all). */
  teardown(): Promise<void>;
}

/** A session's client side for log lines: `198.18.1.2:60953`, `[2001:db8::2]:*` before learning. */
export function clientSide(
  s: Pick<DnatSession, "client" | "clientPort"> | Pick<InstalledSession, "client" | "clientPort">,
): string {
  const client = typeof s.client === "string" ? s.client : s.client.text;
  const host = client.includes(":") ? `[${client}]` : client;
  return `${host}:${s.clientPort ?? "*"}`;
}

/** A session's server side for log lines: `198.18.2.2:33001`. */
export function serverSide(s: DnatSession): string {
  return formatPorts(s.server, s.serverPort, s.portCount);
}

/** The protocols a session forwards: UDP, and TCP too for forward sessions. */
export function sessionProtocols(
  s: Pick<DnatSession, "tcpServerPort">,
): readonly ("udp" | "tcp")[] {
  return s.tcpServerPort === undefined ? ["udp"] : ["udp", "tcp"];
}
