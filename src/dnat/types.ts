/**
 * What the DNAT manager installs: one session's UDP forwarding.
 * @module
 */

import type { IpAddress } from "../net/ip.ts";

/** One session's forwarding: client → proxy:proxyPort becomes → server:serverPort. */
export interface DnatSession {
  /** Session UUID; every rule carries it in its comment. */
  readonly id: string;
  /** pid of the process whose life the rules follow (the reaper's test). */
  readonly owner: number;
  readonly client: IpAddress;
  /** Set when source-port filtering has learned the client's port. */
  readonly clientPort?: number;
  readonly proxy: IpAddress;
  readonly proxyPort: number;
  readonly server: IpAddress;
  readonly serverPort: number;
  /** Forward sessions also carry TCP (the SSH port): proxyPort → server:tcpServerPort. */
  readonly tcpServerPort?: number;
}

/** A session as found in the kernel's rules (what `dnat list` shows). */
export interface InstalledSession {
  readonly id: string;
  readonly owner: number;
  readonly client: string;
  readonly clientPort?: number;
  readonly proxy: string;
  readonly proxyPort: number;
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
    server: s.server.text,
    serverPort: s.serverPort,
    ...(s.tcpServerPort !== undefined ? { tcpServerPort: s.tcpServerPort } : {}),
  };
}

/** The comment tag on every rule: `xferproxy:<session-uuid>:<owner-pid>`. */
export function ruleTag(id: string, owner: number): string {
  return `xferproxy:${id}:${owner}`;
}

/** Parses a rule tag; undefined when it is not ours. */
export function parseRuleTag(text: string): { id: string; owner: number } | undefined {
  const m = /^xferproxy:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d{1,10})$/
    .exec(text);
  return m ? { id: m[1] as string, owner: Number(m[2]) } : undefined;
}

/** A netfilter front end. */
export interface DnatBackend {
  readonly name: "iptables" | "nftables";
  /** Creates our chains/table if missing; never touches anything else. */
  ensureReady(family: 4 | 6): Promise<void>;
  /** Installs a session's rules in one transaction. */
  add(session: DnatSession): Promise<void>;
  /** Atomically replaces a session's rules by the narrowed ones (source port learned). */
  replace(before: DnatSession, after: DnatSession): Promise<void>;
  /** Removes every rule of the sessions whose ids are given; returns the removed sessions. */
  remove(ids: ReadonlySet<string>): Promise<InstalledSession[]>;
  /** Every session our rules hold now. */
  list(): Promise<InstalledSession[]>;
  /** Keeps a session's kernel state alive (nftables timeouts); a no-op for iptables. */
  refresh(session: DnatSession): Promise<void>;
  /** Removes our chains or table once no session is left (reap --all). */
  teardown(): Promise<void>;
}
