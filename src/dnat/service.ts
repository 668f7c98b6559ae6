/**
 * The DNAT service: one long-lived root process that keeps reverse sessions'
 * UDP forwarding true to the registry. It learns clients' source ports,
 * removes a session's rules and flows within a second or two of its owner
 * ending (logging what the flows carried), puts back rules a firewall reload
 * dropped, and refreshes nftables element timeouts. Sessions register their
 * forwarding without it; if it is down, the next session start reaps ended
 * ones and `check system` says so.
 * @module
 */

import { learnPorts, reapDead, reapOrphanRules, repairKernel } from "./manager.ts";
import type { Registry } from "./registry.ts";
import type { DnatDeps } from "./manager.ts";
import { REFRESH_SECONDS } from "./nft_plan.ts";

/** Timings of the loop, in ms. */
export const SERVICE_TIMING = {
  /** The idle round: only the registry's stamp is looked at. */
  roundMs: 100,
  /** Owner liveness: rules go at most this long (plus removal) after the owner ends. */
  livenessEveryMs: 1000,
  /** Put back registered sessions' rules a firewall reload dropped (only while there are any). */
  reconcileEveryMs: 2000,
  /** Look for tagged rules whose owner ended and that no registry knows. */
  orphansEveryMs: 10_000,
  refreshEveryMs: REFRESH_SECONDS * 1000,
  heartbeatEveryMs: 5000,
} as const;

/**
 * How often to look for a learning session's first flow, by its age: a real
 * ascp sends as soon as it has negotiated over SSH, so young sessions are
 * looked at every round and old silent ones rarely (each look runs conntrack).
 */
export function learnIntervalMs(ageMs: number): number {
  if (ageMs < 5_000) return SERVICE_TIMING.roundMs;
  if (ageMs < 60_000) return 1_000;
  return 5_000;
}

/** When the next look for a first flow is due; Infinity when no session is learning. */
function nextLearnAt(registry: Registry, now: number): number {
  let next = Infinity;
  for (const e of registry.entries) {
    if (e.filtering && e.session.clientPort === undefined) {
      next = Math.min(next, now + learnIntervalMs(now - e.created));
    }
  }
  return next;
}

/** What the service needs beyond the manager's dependencies. */
export interface ServiceDeps extends DnatDeps {
  /** Fires when the service should stop. */
  readonly stop: AbortSignal;
  /** Records that the service is alive (for `check system`). */
  heartbeat(): Promise<void>;
  /** Turns on conntrack byte accounting; true when it was off. */
  enableAccounting(): Promise<boolean>;
}

/** Runs until `stop` fires. Errors of one round are logged; the next round tries again. */
export async function runService(deps: ServiceDeps): Promise<void> {
  if (await deps.enableAccounting().catch(() => false)) {
    deps.log.info(
      "Enabled conntrack accounting (net.netfilter.nf_conntrack_acct=1) for UDP byte counts",
    );
  }
  deps.log.info("DNAT service started ({backend} backend, changes through {via})", {
    backend: deps.backend.name,
    via: deps.backend.via,
  });
  const last = {
    liveness: -Infinity,
    reconcile: -Infinity,
    orphans: -Infinity,
    refresh: -Infinity,
    heartbeat: -Infinity,
  };
  let learnAt = Infinity;
  let seen = "";
  const stopped = new Promise<void>((resolve) =>
    deps.stop.addEventListener("abort", () => resolve(), { once: true })
  );
  while (!deps.stop.aborted) {
    const now = deps.now();
    try {
      if (now - last.heartbeat >= SERVICE_TIMING.heartbeatEveryMs) {
        last.heartbeat = now;
        await deps.heartbeat();
      }
      // A session registered since the last round may be waiting for its port to be learned.
      const stamp = await deps.store.stamp();
      const changed = stamp !== seen;
      seen = stamp;
      const due = {
        liveness: now - last.liveness >= SERVICE_TIMING.livenessEveryMs,
        reconcile: now - last.reconcile >= SERVICE_TIMING.reconcileEveryMs,
        orphans: now - last.orphans >= SERVICE_TIMING.orphansEveryMs,
        refresh: now - last.refresh >= SERVICE_TIMING.refreshEveryMs,
        learn: changed || now >= learnAt,
      };
      if (due.learn || due.liveness || due.reconcile || due.orphans || due.refresh) {
        learnAt = await deps.store.lock(async () => {
          const read = await deps.store.read();
          let registry = read;
          if (due.liveness) {
            last.liveness = now;
            registry = await reapDead(deps, registry);
          }
          // Repair first: the first round after an upgrade converts the rules an earlier
          // version wrote (and logs it) before learning touches them.
          if (due.reconcile) {
            last.reconcile = now;
            await repairKernel(deps, registry);
          }
          if (due.learn) registry = await learnPorts(deps, registry);
          if (due.orphans) {
            last.orphans = now;
            await reapOrphanRules(deps, new Set(registry.entries.map((e) => e.session.id)));
          }
          if (due.refresh) {
            last.refresh = now;
            await deps.backend.refresh(registry.entries.map((e) => e.session));
          }
          if (registry !== read) await deps.store.write(registry);
          seen = await deps.store.stamp();
          return nextLearnAt(registry, now);
        });
      }
    } catch (error) {
      deps.log.error("DNAT service round failed: {error}", { error: String(error) });
    }
    await Promise.race([deps.sleep(SERVICE_TIMING.roundMs), stopped]);
  }
  deps.log.info("DNAT service stopped; sessions keep their rules until they end");
}
