/**
 * The DNAT service: one long-lived root process that owns reverse sessions.
 * Sessions register through its socket (service_sessions.ts); it learns
 * clients' source ports, removes a session's rules and flows the moment its
 * owner exits and writes its closing line, puts back rules a firewall
 * reload dropped, and refreshes nftables element timeouts. Sessions still
 * get forwarding without it (sudo); then the next session start reaps ended
 * ones and `check system` says so.
 * @module
 */

import { errorText } from "../errors.ts";
import {
  learningEntries,
  learnPorts,
  listForLearning,
  ORPHANS_EVERY_MS,
  reapDead,
  reapOrphans,
  repairKernel,
} from "./reconcile.ts";
import { forwardedSessions, type Registry } from "./registry.ts";
import type { DnatDeps } from "./deps.ts";
import type { SessionService } from "./service_sessions.ts";
import { type DnatSession, REFRESH_SECONDS } from "./types.ts";

/** Timings of the loop, in ms. */
export const SERVICE_TIMING = {
  /** The idle round: only the registry's stamp is looked at. */
  roundMs: 100,
  /** A safety net for sessions no pidfd watches: the others' exits come as they happen. */
  livenessEveryMs: 5000,
  /** Put back registered sessions' rules a firewall reload dropped (only while there are any). */
  reconcileEveryMs: 2000,
  /**
   * Look for tagged rules whose owner ended and that no registry knows (a crash's leftovers),
   * and for forwarded flows of no session (a purge that failed, a crash before it).
   */
  orphansEveryMs: ORPHANS_EVERY_MS,
  refreshEveryMs: REFRESH_SECONDS * 1000,
  heartbeatEveryMs: 5000,
  /** Look at the config file for changes, and at the drain mark. */
  configEveryMs: 1000,
  /**
   * Give back the memory it has not needed lately: first once started, then this often. The
   * pages it still uses come back from the page cache at once.
   */
  releaseMemoryEveryMs: 600_000,
} as const;

/**
 * How often to look for a learning session's first flow, by its age: a real
 * ascp sends as soon as it has negotiated over SSH, so young sessions are
 * looked at every round and old silent ones rarely (each look runs conntrack).
 * While conntrack's events say when a session's flow appears (`followed`), a
 * look is only the safety net for an event lost: every second, then rarely.
 */
export function learnIntervalMs(ageMs: number, followed = false): number {
  if (ageMs < 5_000 && !followed) return SERVICE_TIMING.roundMs;
  if (ageMs < 60_000) return 1_000;
  return 5_000;
}

/** A new flow conntrack reported: its client, and the proxy address and port it reached. */
export interface ReportedFlow {
  readonly src: string;
  readonly dst: string;
  readonly dport: number;
}

/** New session flows as conntrack's events report them (platform/flow_events.ts). */
export interface FlowEvents {
  /** True while the events are followed: a new flow is then reported, not only found. */
  live(): boolean;
  /** The flows reported since the last call; "many" when there were too many to keep. */
  take(): readonly ReportedFlow[] | "many";
}

/** True when a reported flow may be a learning session's first: its client, proxy and span. */
export function reportsLearning(
  reported: readonly ReportedFlow[] | "many",
  learning: readonly DnatSession[],
): boolean {
  if (reported === "many") return true;
  return reported.some((f) =>
    learning.some((s) =>
      s.client.text === f.src && s.proxy.text === f.dst && f.dport >= s.proxyPort &&
      f.dport < s.proxyPort + s.portCount
    )
  );
}

/** When the next look for a first flow is due; Infinity when no session is learning. */
function nextLearnAt(registry: Registry, now: number, followed: boolean): number {
  let next = Infinity;
  for (const e of learningEntries(registry)) {
    next = Math.min(next, now + learnIntervalMs(now - e.created, followed));
  }
  return next;
}

/** What the heartbeat tells `check system`. */
export interface ServiceStatus {
  /** Sessions registered now. */
  readonly sessions: number;
  /** Why the config file on disk is not in use (the last good one is). */
  readonly configError?: string;
}

/** What the service needs beyond the DNAT core's dependencies. */
export interface ServiceDeps extends DnatDeps {
  /** Fires when the service should stop. */
  readonly stop: AbortSignal;
  /** Records that the service is alive (for `check system`). */
  heartbeat(status: ServiceStatus): Promise<void>;
  /** Turns on conntrack byte accounting; true when it was off. */
  enableAccounting(): Promise<boolean>;
  /** The sessions it owns (absent in tests of the loop alone). */
  readonly sessions?: SessionService;
  /** New session flows from conntrack's events; absent or not live, learning polls instead. */
  readonly flows?: FlowEvents;
  /** Rereads the config file if it changed (logging the outcome); the last good one stays. */
  reloadConfig?(): Promise<void>;
  /** Why the config file on disk is not in use, if it is not. */
  configError?(): string | undefined;
  /** Rereads the drain mark (dnat drain), so new sessions are refused within a second. */
  rereadDrain?(): Promise<void>;
  /** Counts the sessions registered now, for /metrics. */
  countActive?(registry: Registry): void;
  /** Counts the forwarded flows of no session that the sweep removed, for /metrics. */
  countSwept?(flows: number): void;
  /**
   * When netfilter last answered one of the service's calls: an idle service asks it at each
   * heartbeat, so /healthz knows netfilter still answers.
   */
  netfilterAnsweredAt?(): number;
  /**
   * Gives back memory it has not needed lately (platform/release_pages.ts): after the first
   * round, when everything it does to start is done, then every `releaseMemoryEveryMs`.
   */
  releaseMemory?(): Promise<void>;
}

/** Runs until `stop` fires. Errors of one round are logged; the next round tries again. */
export async function runService(deps: ServiceDeps): Promise<void> {
  const accounting = deps.enableAccounting().catch((error) => {
    deps.log.warn("Cannot turn on conntrack accounting; byte counts stay 0: {error}", {
      error: errorText(error),
    });
    return false;
  });
  if (await accounting) {
    deps.log.info(
      "Enabled conntrack accounting (net.netfilter.nf_conntrack_acct=1) for byte counts",
    );
  }
  // Our chains make conntrack follow every connection, the sessions' SSH legs included. A
  // service that cannot prepare them cannot install anything either: it does not start.
  await deps.backend.ensureReady(4);
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
    release: -Infinity,
    config: deps.now(),
  };
  let learnAt = Infinity;
  /** The sessions learning their source port, as of the last round under the lock. */
  let learning: DnatSession[] = [];
  /** The listing's last failure, said once: a round every 100 ms must not repeat it. */
  let listingError: string | undefined;
  const listOrSay = async () => {
    try {
      const listed = await listForLearning(deps, await deps.store.read());
      listingError = undefined;
      return listed;
    } catch (error) {
      if (errorText(error) !== listingError) {
        deps.log.warn("Cannot list conntrack to learn source ports: {error}", {
          error: errorText(error),
        });
      }
      listingError = errorText(error);
      return undefined;
    }
  };
  let seen = "";
  let sessions = 0;
  const onEnded = deps.sessions ? deps.sessions.closed.bind(deps.sessions) : undefined;
  const stopped = new Promise<void>((resolve) =>
    deps.stop.addEventListener("abort", () => resolve(), { once: true })
  );
  while (!deps.stop.aborted) {
    const now = deps.now();
    try {
      if (deps.reloadConfig && now - last.config >= SERVICE_TIMING.configEveryMs) {
        last.config = now;
        await deps.reloadConfig();
        await deps.rereadDrain?.();
      }
      if (now - last.heartbeat >= SERVICE_TIMING.heartbeatEveryMs) {
        last.heartbeat = now;
        const configError = deps.configError?.();
        // A heartbeat that cannot be written (disk full) must not keep the netfilter probe from
        // running: /healthz depends on it, not on the file.
        await deps.heartbeat({ sessions, ...(configError ? { configError } : {}) }).catch((error) =>
          deps.log.warn("Cannot write the heartbeat: {error}", { error: errorText(error) })
        );
        if (
          deps.netfilterAnsweredAt &&
          now - deps.netfilterAnsweredAt() > SERVICE_TIMING.heartbeatEveryMs
        ) {
          // Its failure is what /healthz reports; the next round tries again.
          await deps.backend.ensureReady(4).catch((error) =>
            deps.log.debug("Netfilter does not answer: {error}", { error: errorText(error) })
          );
        }
      }
      // A session registered since the last round may be waiting for its port to be learned:
      // looked for at once, unless conntrack's events will say when its flow appears.
      const stamp = await deps.store.stamp();
      const changed = stamp !== seen;
      seen = stamp;
      const followed = deps.flows?.live() ?? false;
      // Only a flow a learning session may own is worth a listing (one registered this round
      // is not in `learning` yet: any flow then).
      const reported = deps.flows?.take() ?? [];
      const flowSeen = reportsLearning(reported, learning) || (changed && reported.length > 0);
      const due = {
        liveness: now - last.liveness >= SERVICE_TIMING.livenessEveryMs,
        reconcile: now - last.reconcile >= SERVICE_TIMING.reconcileEveryMs,
        orphans: now - last.orphans >= SERVICE_TIMING.orphansEveryMs,
        refresh: now - last.refresh >= SERVICE_TIMING.refreshEveryMs,
        learn: flowSeen || now >= learnAt || (changed && !followed),
      };
      if (changed || due.learn || due.liveness || due.reconcile || due.orphans || due.refresh) {
        let current: Registry | undefined;
        // The conntrack listing before the lock: installs need the lock more than learning does.
        // A listing that fails (conntrack gone) counts as a look: the next is due at its
        // interval, and the other work of the round still runs.
        const listing = due.learn ? await listOrSay() : undefined;
        await deps.store.lock(async () => {
          const read = await deps.store.read();
          let registry = read;
          try {
            if (due.liveness) {
              last.liveness = now;
              registry = await reapDead(
                deps,
                registry,
                onEnded,
                deps.sessions && ((id) => deps.sessions!.watches(id)),
              );
            }
            // Repair first: the first round after an upgrade converts the rules an earlier
            // version wrote (and logs it) before learning touches them.
            if (due.reconcile) {
              last.reconcile = now;
              await repairKernel(deps, registry);
            }
            if (listing) registry = await learnPorts(deps, registry, listing);
            if (due.orphans) {
              last.orphans = now;
              const { swept } = await reapOrphans(deps, registry);
              if (swept) deps.countSwept?.(swept);
            }
            if (due.refresh) {
              last.refresh = now;
              await deps.backend.refresh(forwardedSessions(registry));
            }
            if (registry !== read) await deps.store.write(registry);
            seen = await deps.store.stamp();
            sessions = registry.entries.length;
            deps.countActive?.(registry);
            current = registry;
          } finally {
            // Even in a round that failed half-way: a session registered meanwhile is looked for.
            // A round that did not look keeps the look already due: the reconcile and liveness
            // rounds, every few seconds, would otherwise put an older session's look off forever.
            learning = learningEntries(registry).map((e) => e.forwarding.session);
            const next = nextLearnAt(registry, now, followed);
            learnAt = due.learn ? next : Math.min(learnAt, next);
          }
        });
        // Sessions registered by others (sudo while the service was down, or before a restart).
        // Outside the lock: ending one whose owner is already gone takes the lock itself.
        if (changed && current) await deps.sessions?.adopt(current);
      }
    } catch (error) {
      deps.log.error("DNAT service round failed: {error}", { error: String(error) });
    }
    if (deps.releaseMemory && now - last.release >= SERVICE_TIMING.releaseMemoryEveryMs) {
      last.release = now;
      await deps.releaseMemory().catch((error) =>
        deps.log.debug("Cannot give memory back: {error}", { error: errorText(error) })
      );
    }
    await Promise.race([deps.sleep(SERVICE_TIMING.roundMs), stopped]);
  }
  deps.sessions?.close();
  deps.log.info("DNAT service stopped; sessions keep their rules until they end");
}
