/**
 * Reconciling: the kernel and the registry made to agree with the world.
 * Sessions whose owner ended go, address-only sessions learn their client's
 * source port, rules a firewall reload dropped come back, rules nobody
 * records whose owner ended go, and their flows are purged, as are
 * forwarded flows of no session at all (sweep.ts).
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { errorText, logIgnored } from "../errors.ts";
import { anyPort, type Conntrack, type Flow } from "./conntrack.ts";
import type { DnatDeps, Ended } from "./deps.ts";
import { isAlive } from "./owner.ts";
import {
  forwardedSessions,
  forwardingEntries,
  type ForwardingEntry,
  type Registry,
  withEntry,
  withForwarding,
} from "./registry.ts";
import { removeEntries } from "./remove.ts";
import { sweepStaleFlows } from "./sweep.ts";
import {
  clientSide,
  type DnatSession,
  fromInstalled,
  type InstalledSession,
  serverSide,
  sessionProtocols,
} from "./types.ts";

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

/** Sessions still waiting to learn their client's source port. */
export function learningEntries(registry: Registry): ForwardingEntry[] {
  return forwardingEntries(registry).filter((e) =>
    e.forwarding.filtering && e.forwarding.session.clientPort === undefined
  );
}

/** A conntrack listing taken for `learnPorts` before the lock, and when it began. */
export interface FlowListing {
  readonly at: number;
  /** The flows to each proxy address a learning session had when it began. */
  readonly flows: ReadonlyMap<string, readonly Flow[]>;
}

/**
 * The listing `learnPorts` needs, taken without the lock: under load a conntrack process took
 * seconds, and every install waited behind it. Without the lock; `registry` as read then.
 */
export async function listForLearning(
  deps: Pick<DnatDeps, "conntrack" | "now">,
  registry: Registry,
): Promise<FlowListing> {
  const at = deps.now();
  const proxies = new Map(
    learningEntries(registry).map((e) => [e.forwarding.session.proxy.text, e.forwarding.session]),
  );
  const flows = new Map<string, readonly Flow[]>();
  for (const [text, session] of proxies) flows.set(text, await deps.conntrack.flows(session.proxy));
  return { at, flows };
}

/**
 * Narrows address-only sessions to the source port of their client's first
 * flow. Sessions of one client to one proxy port each take a flow port no
 * other session has claimed; once none of them is still learning, flows
 * from unclaimed ports are purged, so nothing else of that address is
 * forwarded. Call under the lock; the caller writes the result. With a
 * `listing` taken before the lock, only sessions recorded before it began
 * are looked at (an older listing could hold a flow their install purged);
 * the others wait for the next.
 */
export async function learnPorts(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "log">,
  registry: Registry,
  listing?: FlowListing,
): Promise<Registry> {
  const learning = learningEntries(registry).filter((e) =>
    !listing ||
    (e.created < listing.at && listing.flows.has(e.forwarding.session.proxy.text))
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
      const listed = listing?.flows.get(first.proxy.text);
      listings.set(
        first.proxy.text,
        listed ? Promise.resolve([...listed]) : deps.conntrack.flows(first.proxy),
      );
    }
    // A flow no rule translated is none of these sessions': one that began before a session's
    // rule, still listed while its purge runs, would otherwise narrow the session to a port its
    // real flow does not come from.
    const flows = (await listings.get(first.proxy.text) as Flow[]).filter((f) =>
      f.src === first.client.text && !f.untranslated
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
      // Every flow of the span but those the peers' own rules made, one delete per proxy port
      // (not one per flow: the client chooses how many source ports it sends from).
      const spare = peers.map((e) => e.forwarding.session);
      await deps.conntrack.purge([anyPort(s)], "udp", spare).catch(
        logIgnored(deps.log, `Cannot purge other ports' flows of session ${s.id}`),
      );
    }
  }
  return current;
}

/**
 * Puts back the rules of registered sessions that a firewall reload dropped
 * (kube-proxy's reconcile), then deletes those sessions' flows that met no
 * rule meanwhile: a packet that arrived while the rules were gone left an
 * untranslated entry, which every later packet of the same flow (a FASP
 * sender never pauses long enough for it to expire) would follow to the
 * proxy itself. Call under the lock; returns how many sessions needed it.
 */
export async function repairKernel(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "log">,
  registry: Registry,
): Promise<number> {
  const sessions = forwardedSessions(registry);
  if (sessions.length === 0) return 0;
  const { repaired, converted, rehooked = [] } = await deps.backend.reconcile(sessions);
  const byId = new Map(sessions.map((s) => [s.id, s]));
  for (const id of repaired) {
    deps.log.warn("Re-asserted UDP forwarding of session {session}: its rules were missing", {
      session: id,
    });
  }
  // Only a flow that began while they were gone met no rule: the first flow of a session not yet
  // narrowed to its port (a narrowed one's flow is older, translated already).
  const putBack = new Set(repaired);
  const unhooked = rehooked.filter((id) =>
    !putBack.has(id) && byId.get(id)?.clientPort === undefined
  );
  if (rehooked.length) {
    deps.log.warn(
      "Put back our chains or their jumps (a firewall change removed them); purging what met no rule meanwhile of {count} sessions not yet narrowed to their port",
      { count: unhooked.length },
    );
  }
  const purged = [...repaired, ...unhooked].map((id) => byId.get(id)).filter((s) =>
    s !== undefined
  );
  for (const protocol of ["udp", "tcp"] as const) {
    const of = purged.filter((s) => sessionProtocols(s).includes(protocol));
    if (of.length === 0) continue;
    await deps.conntrack.purgeUntranslated(of, protocol).catch(
      logIgnored(
        deps.log,
        `Cannot purge untranslated ${protocol} flows of ${of.length} sessions (${of[0]!.id} …)`,
      ),
    );
  }
  if (converted.length) {
    deps.log.info("Converted the rules of {count} live sessions to the fixed forwarding rules", {
      count: converted.length,
    });
  }
  return repaired.length;
}

/** How often the DNAT service and the forward daemon look for orphans: rules and flows. */
export const ORPHANS_EVERY_MS = 30_000;

/**
 * Removes tagged kernel rules of sessions the registry does not know whose
 * owner has ended (left by a crash between a change and its record, or by a
 * forward daemon that died), then sweeps the forwarded flows no session
 * owns: a purge that failed, or a remover that died between removing a
 * session's rules and purging its flows. What still forwards (the
 * registry's sessions, and rules still in the kernel) keeps its flows.
 * Call under the lock. A sweep that fails is logged; the next one tries
 * again.
 */
export async function reapOrphans(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "log">,
  registry: Registry,
): Promise<{ reaped: number; swept: number }> {
  const known = new Set(registry.entries.map((e) => e.id));
  const strangers = (await deps.backend.list()).filter((s) => !known.has(s.id));
  const reaped = await reapOrphanRules(deps, strangers);
  const gone = new Set(reaped.map((s) => s.id));
  const owners = [
    // Those being removed too: their removal purges them once it works.
    ...forwardingEntries(registry).map((e) => e.forwarding.session),
    ...strangers.filter((s) => !gone.has(s.id)).map(fromInstalled).filter((s) => s !== undefined),
  ];
  const swept = await sweepStaleFlows(deps, owners).catch((error) => {
    deps.log.warn("Cannot remove forwarded flows of no session; trying again later: {error}", {
      error: errorText(error),
    });
    return 0;
  });
  return { reaped: reaped.length, swept };
}

/** Removes the rules of kernel-only sessions whose owner has ended; returns what went. */
async function reapOrphanRules(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "log">,
  strangers: readonly InstalledSession[],
): Promise<InstalledSession[]> {
  if (strangers.length === 0) return [];
  const running = await deps.processes.lookup(strangers.map((s) => s.owner.pid));
  const orphans = strangers.filter((s) => !isAlive(s.owner, running));
  if (orphans.length === 0) return [];
  const removed = await deps.backend.removeTagged(new Set(orphans.map((s) => s.id)));
  await purgeInstalledFlows(deps.conntrack, removed, deps.log);
  for (const s of removed) {
    deps.log.info("Reaped forwarding of session {session} (owner {owner} is gone)", {
      session: s.id,
      owner: s.owner.pid,
      client: clientSide(s),
    });
  }
  return removed;
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
  const flows = sessions.map(fromInstalled).filter((s) => s !== undefined).map(anyPort);
  if (flows.length === 0) return;
  for (const protocol of ["udp", "tcp"] as const) {
    await conntrack.purge(flows, protocol).catch(
      logIgnored(log, `Cannot purge the ${protocol} flows of ${flows.length} orphaned sessions`),
    );
  }
}

/** Both: the kernel made to match the registry. Call under the lock. */
export async function reconcileKernel(
  deps: Pick<DnatDeps, "backend" | "conntrack" | "processes" | "log">,
  registry: Registry,
): Promise<{ repaired: number; reaped: number; swept: number }> {
  const repaired = await repairKernel(deps, registry);
  return { repaired, ...await reapOrphans(deps, registry) };
}
