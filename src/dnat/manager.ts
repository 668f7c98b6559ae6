/**
 * Every session's forwarding, reverse (UDP, rules of the config) and forward
 * (TCP and UDP, the forward daemon's, rule 0): the registry (desired state)
 * and the kernel (actual state) changed together, under one lock shared by
 * the privileged calls, the DNAT service and the forward daemon. Everything
 * outside the process comes in through `DnatDeps`.
 * @module
 */

import { logIgnored } from "../errors.ts";
import type { Logger } from "@logtape/logtape";
import type { IpAddress } from "../net/ip.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import type { Config } from "../config/mod.ts";
import type { Target } from "./contract.ts";
import { authorize, choosePorts, conflicts } from "./authorize.ts";
import { ForwardingDisabledError, NotAuthorizedError } from "./errors.ts";
import { anyPort, type Conntrack, type Flow, type FlowCounters } from "./conntrack.ts";
import { isAlive, type ProcessTable } from "./owner.ts";
import {
  forwardedSessions,
  forwardingEntries,
  type ForwardingEntry,
  type Registry,
  type RegistryEntry,
  withEntry,
  withForwarding,
  withoutSessions,
} from "./registry.ts";
import {
  type DnatBackend,
  type DnatSession,
  formatPorts,
  fromInstalled,
  type InstalledSession,
  type Owner,
} from "./types.ts";

/** Where the registry lives, and the lock around it. */
export interface RegistryStore {
  /** Runs `fn` holding the exclusive DNAT lock. */
  lock<T>(fn: () => Promise<T>): Promise<T>;
  /** The registry; empty when missing. */
  read(): Promise<Registry>;
  write(registry: Registry): Promise<void>;
  /** Changes whenever the registry is written (cheap: no parsing). */
  stamp(): Promise<string>;
}

/** Everything the manager touches. */
export interface DnatDeps {
  readonly backend: DnatBackend;
  readonly conntrack: Conntrack;
  readonly store: RegistryStore;
  readonly processes: ProcessTable;
  readonly config: Config;
  /** The kernel forwards packets for this family (net.ipv4.ip_forward). */
  forwardingEnabled(family: 4 | 6): Promise<boolean>;
  now(): number;
  sleep(ms: number): Promise<void>;
  readonly log: Logger;
}

/** How long an install waits for another session of the same client to learn its port. */
export const SERIALISE_WAIT_MS = 10_000;
const RETRY_MS = 100;

/** Who asks: a sudo or socket caller's uid, or root (undefined). */
export interface Caller {
  readonly uid?: number;
}

/** Who registers, as the kernel says (or root names it). */
export interface Claimant {
  readonly owner: Owner;
  /** The session's user; 0 for root. */
  readonly uid: number;
  readonly client: IpAddress;
  readonly proxy: IpAddress;
  /** The client's SSH connection, when it was read from sshd's socket. */
  readonly ssh?: RegistryEntry["ssh"];
}

/** One session to register: its issued id, who it is, where it goes. */
export interface Registration {
  readonly id: string;
  readonly claimant: Claimant;
  readonly target: Target;
  /** The proxy user as the session names itself, for the closing line. */
  readonly user?: string;
}

function clientSide(s: DnatSession | InstalledSession): string {
  const client = typeof s.client === "string" ? s.client : s.client.text;
  const host = client.includes(":") ? `[${client}]` : client;
  return `${host}:${s.clientPort ?? "*"}`;
}

function serverSide(s: DnatSession): string {
  return formatPorts(s.server, s.serverPort, s.portCount);
}

function entryOf(registration: Registration, created: number): RegistryEntry {
  const { id, claimant, target, user } = registration;
  return {
    id,
    owner: claimant.owner,
    uid: claimant.uid,
    rule: target.rule,
    created,
    ...(user ? { user } : {}),
    upstream: formatEndpoint(target.server),
    ...(claimant.ssh ? { ssh: claimant.ssh } : {}),
  };
}

/**
 * Records a session that needs no forwarding (scp, sftp, rsync): the
 * service writes its closing line when it ends. Checked against the config
 * like any other.
 * @throws {NotAuthorizedError}
 */
export async function record(deps: DnatDeps, registration: Registration): Promise<RegistryEntry> {
  authorize(deps.config, { ...registration.target, ...registration.claimant });
  return await deps.store.lock(async () => {
    const entry = entryOf(registration, deps.now());
    await deps.store.write(withEntry(await deps.store.read(), entry));
    return entry;
  });
}

/**
 * Installs one session's forwarding and records it; the rules then live as
 * long as the owner process.
 * @throws {NotAuthorizedError} when the config or a conflict forbids it
 * @throws {ForwardingDisabledError}
 */
export async function install(
  deps: DnatDeps,
  registration: Registration,
): Promise<ForwardingEntry> {
  const { id, claimant, target } = registration;
  const authorized = authorize(deps.config, { ...target, ...claimant });
  const family = claimant.client.family;
  if (!(await deps.forwardingEnabled(family))) throw new ForwardingDisabledError(family);
  const filtering = authorized.rule.srcPortFiltering;
  const log = deps.log.with({ session: id, rule: target.rule });
  const deadline = deps.now() + SERIALISE_WAIT_MS;
  for (;;) {
    const installed = await deps.store.lock(async () => {
      let registry = await reapDead(deps, await deps.store.read());
      await deps.backend.ensureReady(family);
      const session = choosePorts(authorized, { id, ...claimant }, forwardedSessions(registry));
      let blocking = conflicts(session, forwardingEntries(registry).map((e) => e.forwarding));
      const stuck = blocking.find((c) => c.permanent);
      if (stuck) {
        throw new NotAuthorizedError(
          `session ${stuck.session.id} of ${claimant.client.text} is forwarded to ${
            serverSide(stuck.session)
          } without source-port filtering, so UDP to ${serverSide(session)} cannot be told apart`,
        );
      }
      if (blocking.length) {
        // Learn here too: sessions still get through while the DNAT service is down.
        registry = await learnPorts(deps, registry);
        blocking = conflicts(session, forwardingEntries(registry).map((e) => e.forwarding));
      }
      if (blocking.length) {
        await deps.store.write(registry);
        return undefined;
      }
      await deps.backend.add([session]);
      // A flow that reached the proxy before the rule (un-NATed) would blackhole the session.
      await deps.conntrack.purge(session);
      const entry: ForwardingEntry = {
        ...entryOf(registration, deps.now()),
        forwarding: { session, filtering },
      };
      await deps.store.write(withEntry(registry, entry));
      return entry;
    });
    if (installed) {
      const session = installed.forwarding.session;
      if (filtering) {
        log.debug("Waiting for the first UDP flow from {client} to {proxy}", {
          client: session.client.text,
          proxy: formatPorts(session.proxy, session.proxyPort, session.portCount),
        });
      } else {
        log.info("Setup UDP forwarding between {client} and {server}", {
          client: clientSide(session),
          server: serverSide(session),
          owner: session.owner.pid,
        });
      }
      return installed;
    }
    if (deps.now() >= deadline) {
      throw new NotAuthorizedError(
        `another session of ${claimant.client.text} to this proxy port has not sent UDP within ${
          SERIALISE_WAIT_MS / 1000
        } s; its flows and this one's could not be told apart`,
      );
    }
    await deps.sleep(RETRY_MS);
  }
}

/** What a session's end leaves to say: its entry, and what its UDP flows carried. */
export interface Ended {
  readonly entry: RegistryEntry;
  readonly udp?: FlowCounters;
}

/**
 * Removes sessions' rules and flows, logs what each forwarding carried, and
 * returns the registry without them and what each ended with. Call under the
 * lock; the caller writes the result.
 */
export async function removeEntries(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "now" | "log">,
  registry: Registry,
  doomed: readonly RegistryEntry[],
  reason: string,
): Promise<{ registry: Registry; ended: Ended[] }> {
  if (doomed.length === 0) return { registry, ended: [] };
  const ids = new Set(doomed.map((e) => e.id));
  const after = withoutSessions(registry, ids);
  const forwarding = doomed.filter((e): e is ForwardingEntry => e.forwarding !== undefined);
  if (forwarding.length) {
    await deps.backend.remove(
      forwarding.map((e) => e.forwarding.session),
      forwardedSessions(after),
    );
  }
  const ended: Ended[] = [];
  for (const entry of doomed) {
    if (!entry.forwarding) {
      ended.push({ entry });
      continue;
    }
    const s = entry.forwarding.session;
    // Every source port: learned or not, the session's flows stop the moment it ends.
    const counters = await deps.conntrack.purge(anyPort(s)).catch((error) => {
      deps.log.warn("Purging the flows of session {session} failed: {error}", {
        session: s.id,
        error: String(error),
      });
      return { bytes: 0, packets: 0 };
    });
    if (s.tcpServerPort !== undefined) {
      await deps.conntrack.purge(anyPort(s), "tcp").catch(
        logIgnored(deps.log, `Cannot purge tcp flows of session ${s.id}`),
      );
    }
    ended.push({ entry, udp: counters });
    deps.log.info(`Removed UDP forwarding between {client} and {server} (${reason})`, {
      client: clientSide(s),
      server: serverSide(s),
      session: s.id,
      rule: entry.rule,
      owner: s.owner.pid,
      bytes: counters.bytes,
      packets: counters.packets,
      duration_ms: Math.max(0, deps.now() - entry.created),
    });
  }
  return { registry: after, ended };
}

/**
 * Installs and records sessions whose owner chose their forwarding itself
 * (the forward daemon's: rule 0, TCP and UDP on one proxy port), so that
 * the same reconcile heals them and `dnat list` shows them.
 */
export async function installOwned(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "store" | "log">,
  entries: readonly ForwardingEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  await deps.store.lock(async () => {
    let registry = await deps.store.read();
    const sessions = entries.map((e) => e.forwarding.session);
    for (const family of new Set(sessions.map((s) => s.client.family))) {
      await deps.backend.ensureReady(family);
    }
    // Recorded first: a crash between the two leaves a record the owner's end removes.
    for (const entry of entries) registry = withEntry(registry, entry);
    await deps.store.write(registry);
    await deps.backend.add(sessions);
    for (const s of sessions) {
      // A flow that reached the proxy before the rule (un-NATed) would blackhole the session.
      for (const protocol of ["tcp", "udp"] as const) {
        await deps.conntrack.purge(s, protocol).catch(
          logIgnored(deps.log, `Cannot purge ${protocol} flows of session ${s.id}`),
        );
      }
    }
  });
}

/**
 * Removes recorded sessions by id. When the kernel refuses, they stay
 * recorded, marked as being removed (installed and refreshed no more), the
 * failure is logged, and the ids come back as `pending`: call again (the
 * forward daemon does every round) until they go.
 */
export async function removeOwned(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "store" | "now" | "log">,
  ids: ReadonlySet<string>,
  reason: string,
): Promise<{ ended: Ended[]; pending: string[] }> {
  return await deps.store.lock(async () => {
    const registry = await deps.store.read();
    const doomed = registry.entries.filter((e) => ids.has(e.id));
    try {
      const { registry: after, ended } = await removeEntries(deps, registry, doomed, reason);
      await deps.store.write(after);
      return { ended, pending: [] };
    } catch (error) {
      const now = deps.now();
      let marked = registry;
      for (const entry of doomed) {
        deps.log.warn("Removing the forwarding of session {session} failed; retrying: {error}", {
          session: entry.id,
          error: String(error),
        });
        if (entry.removing === undefined) marked = withEntry(marked, { ...entry, removing: now });
      }
      await deps.store.write(marked);
      return { ended: [], pending: doomed.map((e) => e.id) };
    }
  });
}

/**
 * Removes the sessions whose owner has ended. Call under the lock; writes
 * the registry. `onEnded` hears of each, for its closing line.
 */
export async function reapDead(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "store" | "now" | "log">,
  registry: Registry,
  onEnded?: (ended: readonly Ended[]) => void,
  /** Sessions whose end another means reports (the service's pidfds): not looked at. */
  watched?: (id: string) => boolean,
): Promise<Registry> {
  const candidates = watched ? registry.entries.filter((e) => !watched(e.id)) : registry.entries;
  if (candidates.length === 0) return registry;
  const running = await deps.processes.lookup(candidates.map((e) => e.owner.pid));
  const dead = candidates.filter((e) => !isAlive(e.owner, running));
  if (dead.length === 0) return registry;
  const { registry: after, ended } = await removeEntries(deps, registry, dead, "session ended");
  await deps.store.write(after);
  onEnded?.(ended);
  return after;
}

/**
 * Narrows address-only sessions to the source port of their client's first
 * flow. Sessions of one client to one proxy port each take a flow port no
 * other session has claimed; once none of them is still learning, flows
 * from unclaimed ports are purged, so nothing else of that address is
 * forwarded. Call under the lock; the caller writes the result.
 */
export async function learnPorts(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "log">,
  registry: Registry,
): Promise<Registry> {
  const learning = forwardingEntries(registry).filter((e) =>
    e.forwarding.filtering && e.forwarding.session.clientPort === undefined
  );
  if (learning.length === 0) return registry;
  let current = registry;
  const byPair = new Map<string, ForwardingEntry[]>();
  for (const entry of learning) {
    const s = entry.forwarding.session;
    const key = `${s.client.text}|${s.proxy.text}`;
    byPair.set(key, [...(byPair.get(key) ?? []), entry]);
  }
  const sameSpan = (a: DnatSession, b: DnatSession) =>
    a.client.text === b.client.text && a.proxy.text === b.proxy.text &&
    a.proxyPort < b.proxyPort + b.portCount && b.proxyPort < a.proxyPort + a.portCount;
  const peersOf = (s: DnatSession) =>
    forwardingEntries(current).filter((e) => sameSpan(e.forwarding.session, s));
  // One conntrack listing per proxy address, whatever the number of clients.
  const listings = new Map<string, Promise<Flow[]>>();
  for (const group of byPair.values()) {
    const first = (group[0] as ForwardingEntry).forwarding.session;
    if (!listings.has(first.proxy.text)) {
      listings.set(first.proxy.text, deps.conntrack.flows(first.proxy));
    }
    const flows = (await listings.get(first.proxy.text) as Flow[]).filter((f) =>
      f.src === first.client.text
    );
    for (const entry of [...group].sort((a, b) => a.created - b.created)) {
      const s = entry.forwarding.session;
      const claimed = new Set(peersOf(s).map((e) => e.forwarding.session.clientPort));
      const flow = flows.find((f) =>
        f.dport >= s.proxyPort && f.dport < s.proxyPort + s.portCount && !claimed.has(f.sport)
      );
      if (!flow) continue;
      const narrowed: DnatSession = { ...s, clientPort: flow.sport };
      const others = forwardedSessions(current).filter((o) => o.id !== s.id);
      await deps.backend.replace(s, narrowed, others);
      current = withEntry(current, withForwarding(entry, narrowed));
      deps.log.info("Setup UDP forwarding between {client} and {server}", {
        client: clientSide(narrowed),
        server: serverSide(narrowed),
        session: s.id,
        rule: entry.rule,
        owner: s.owner.pid,
      });
    }
    for (const entry of group) {
      const s = forwardingEntries(current).find((e) => e.id === entry.id)?.forwarding.session;
      if (!s) continue;
      const peers = peersOf(s);
      if (
        peers.some((e) => e.forwarding.filtering && e.forwarding.session.clientPort === undefined)
      ) {
        continue;
      }
      if (!peers.every((e) => e.forwarding.filtering)) continue;
      const keep = new Set(peers.map((e) => e.forwarding.session.clientPort as number));
      await deps.conntrack.purgeOtherPorts(s, keep).catch(
        logIgnored(deps.log, `Cannot purge other ports' flows of session ${s.id}`),
      );
    }
  }
  return current;
}

/**
 * Puts back the rules of registered sessions that a firewall reload dropped
 * (kube-proxy's reconcile). Call under the lock; returns how many sessions
 * needed it.
 */
export async function repairKernel(
  deps: Pick<DnatDeps, "backend" | "log">,
  registry: Registry,
): Promise<number> {
  const sessions = forwardedSessions(registry);
  if (sessions.length === 0) return 0;
  const { repaired, converted } = await deps.backend.reconcile(sessions);
  for (const id of repaired) {
    deps.log.warn("Re-asserted UDP forwarding of session {session}: its rules were missing", {
      session: id,
    });
  }
  if (converted.length) {
    deps.log.info("Converted the rules of {count} live sessions to the fixed forwarding rules", {
      count: converted.length,
    });
  }
  return repaired.length;
}

/**
 * Removes tagged kernel rules of sessions not in `known` whose owner has
 * ended: left by a crash between a change and its record, or by a forward
 * daemon that died. Returns how many sessions went.
 */
export async function reapOrphanRules(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "log">,
  known: ReadonlySet<string>,
): Promise<number> {
  const strangers = (await deps.backend.list()).filter((s) => !known.has(s.id));
  if (strangers.length === 0) return 0;
  const running = await deps.processes.lookup(strangers.map((s) => s.owner.pid));
  const orphans = strangers.filter((s) => !isAlive(s.owner, running));
  if (orphans.length === 0) return 0;
  const removed = await deps.backend.removeTagged(new Set(orphans.map((s) => s.id)));
  await purgeInstalledFlows(deps.conntrack, removed, deps.log);
  for (const s of removed) {
    deps.log.info("Reaped forwarding of session {session} (owner {owner} is gone)", {
      session: s.id,
      owner: s.owner.pid,
      client: clientSide(s),
    });
  }
  return removed.length;
}

/**
 * Purges the UDP and TCP flows of rules found only in the kernel (the
 * forward daemon's carry both), ignoring failures: the rules are gone.
 */
export async function purgeInstalledFlows(
  conntrack: Conntrack,
  sessions: readonly InstalledSession[],
  log: Logger,
): Promise<void> {
  for (const s of sessions.map(fromInstalled)) {
    if (!s) continue;
    for (const protocol of ["udp", "tcp"] as const) {
      await conntrack.purge(anyPort(s), protocol).catch(
        logIgnored(log, `Cannot purge ${protocol} flows of session ${s.id}`),
      );
    }
  }
}

/** Both: the kernel made to match the registry. Call under the lock. */
export async function reconcileKernel(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "log">,
  registry: Registry,
): Promise<{ repaired: number; reaped: number }> {
  const repaired = await repairKernel(deps, registry);
  const known = new Set(registry.entries.map((e) => e.id));
  return { repaired, reaped: await reapOrphanRules(deps, known) };
}
