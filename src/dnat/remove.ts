/**
 * Removing sessions' forwarding: rules out of the kernel, flows purged with
 * what they carried, records dropped, or kept and marked while netfilter
 * refuses (retried by their owner).
 * @module
 */

import { logIgnored } from "../errors.ts";
import { anyPort } from "./conntrack.ts";
import type { DnatDeps, Ended } from "./deps.ts";
import {
  forwardedSessions,
  type ForwardingEntry,
  type Registry,
  type RegistryEntry,
  withEntry,
  withoutSessions,
} from "./registry.ts";
import { clientSide, serverSide } from "./types.ts";

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
  const live = forwardedSessions(after);
  if (forwarding.length) {
    await deps.backend.remove(forwarding.map((e) => e.forwarding.session), live);
  }
  // Every source port, learned or not (the flows of another live session of the client's
  // aside): the session's flows stop the moment it ends. One listing and one delete for all
  // of them: a thousand sessions often end at once.
  const flows = forwarding.map((e) => anyPort(e.forwarding.session));
  const counters = await deps.conntrack.purge(flows, "udp", live).catch((error) => {
    deps.log.warn("Purging the flows of {count} ended sessions failed: {error}", {
      count: flows.length,
      error: String(error),
    });
    return flows.map(() => ({ bytes: 0, packets: 0 }));
  });
  // TCP spares nothing: a learned port is a UDP source port, and only forward sessions carry
  // TCP (a live session's learned port must not keep an ended one's SSH connection forwarded).
  const tcp = forwarding.filter((e) => e.forwarding.session.tcpServerPort !== undefined);
  if (tcp.length) {
    await deps.conntrack.purge(tcp.map((e) => anyPort(e.forwarding.session)), "tcp").catch(
      logIgnored(deps.log, `Cannot purge the tcp flows of ${tcp.length} ended sessions`),
    );
  }
  const carried = new Map(forwarding.map((e, i) => [e.id, counters[i]]));
  const ended: Ended[] = [];
  for (const entry of doomed) {
    if (!entry.forwarding) {
      ended.push({ entry });
      continue;
    }
    const s = entry.forwarding.session;
    const udp = carried.get(entry.id) ?? { bytes: 0, packets: 0 };
    ended.push({ entry, udp });
    deps.log.info(`Removed UDP forwarding between {client} and {server} (${reason})`, {
      client: clientSide(s),
      server: serverSide(s),
      session: s.id,
      rule: entry.rule,
      owner: s.owner.pid,
      bytes: udp.bytes,
      packets: udp.packets,
      duration_ms: Math.max(0, deps.now() - entry.created),
    });
  }
  return { registry: after, ended };
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
