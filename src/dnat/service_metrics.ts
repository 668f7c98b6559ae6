/**
 * What the DNAT service counts, for `/metrics`: reverse sessions (active by
 * rule, started, ended, refused), how long set-up took, what they moved,
 * netfilter changes and failures, forwarded flows of no session removed,
 * hosts marked faulty, log lines lost, and whether the node is draining.
 * docs/metrics.md lists every family; a test holds the two together.
 * @module
 */

import { MetricsRegistry } from "../metrics/prometheus.ts";
import type { Registry } from "./registry.ts";

/** Why the service refused a session. */
export type RefusalReason =
  | "draining"
  | "not_authorized"
  | "failed"
  | "bad_request"
  | "too_many_connections";

/** What one ended session moved. */
export interface EndedCounts {
  readonly rule: number;
  /** How it ended: its owner exited, or it was removed (`dnat del`, a poll, a reap). */
  readonly reason: "exited" | "removed";
  readonly udp?: { readonly bytes: number; readonly packets: number };
  readonly ssh?: { readonly in: number; readonly out: number };
}

/** The service's metrics. */
export interface ServiceMetrics {
  readonly registry: MetricsRegistry;
  started(rule: number, udp: boolean, setupSeconds: number): void;
  refused(reason: RefusalReason): void;
  ended(counts: EndedCounts): void;
  /** Sessions registered now, by rule (from the registry the loop just read); 0 for `rules`' others. */
  active(registry: Registry, rules: number): void;
  /** One netfilter change (`op` names it: add, remove, reconcile, …) and whether it worked. */
  netfilter(op: string, ok: boolean): void;
  /** Forwarded flows of no session that the sweep removed. */
  staleFlowsRemoved(count: number): void;
  hostMarkedFaulty(host: string): void;
  logLinesLost(count: number): void;
  draining(on: boolean): void;
}

/** The families, labelled with this build and backend. */
export function serviceMetrics(
  build: { readonly version: string; readonly backend: string },
  startedAtMs: number,
): ServiceMetrics {
  const r = new MetricsRegistry();
  r.gauge("xferproxy_build_info", "Always 1; the labels say which build and backend run.", [
    "version",
    "backend",
  ]).set({ version: build.version, backend: build.backend }, 1);
  r.gauge("xferproxy_dnat_service_start_time_seconds", "When the DNAT service started (Unix time).")
    .set({}, Math.floor(startedAtMs / 1000));
  const draining = r.gauge(
    "xferproxy_dnat_service_draining",
    "1 while the node is drained: new reverse sessions are refused, running ones go on.",
  );
  const active = r.gauge(
    "xferproxy_reverse_sessions_active",
    "Reverse sessions registered now, by rule (position in <rules>, from 1).",
    ["rule"],
  );
  const started = r.counter(
    "xferproxy_reverse_sessions_started_total",
    "Reverse sessions registered, by rule and whether they got UDP forwarding.",
    ["rule", "udp"],
  );
  const ended = r.counter(
    "xferproxy_reverse_sessions_ended_total",
    "Reverse sessions ended, by rule and how (exited: the owner ended; removed: by dnat del, a poll or a reap).",
    ["rule", "reason"],
  );
  const refused = r.counter(
    "xferproxy_reverse_sessions_refused_total",
    "Reverse sessions the service refused, by reason (draining, not_authorized, failed, bad_request, too_many_connections).",
    ["reason"],
  );
  const setup = r.histogram(
    "xferproxy_reverse_setup_duration_seconds",
    "From a session's hello to its registration: identification, the host's choice and netfilter.",
    ["udp"],
  );
  const udpBytes = r.counter(
    "xferproxy_reverse_udp_bytes_total",
    "UDP bytes of ended FASP sessions, both directions, by rule.",
    ["rule"],
  );
  const udpPackets = r.counter(
    "xferproxy_reverse_udp_packets_total",
    "UDP packets of ended FASP sessions, both directions, by rule.",
    ["rule"],
  );
  const sshBytes = r.counter(
    "xferproxy_reverse_ssh_bytes_total",
    "Bytes of ended sessions' SSH legs between client and proxy, by direction (in: from the client).",
    ["direction"],
  );
  const changes = r.counter(
    "xferproxy_netfilter_changes_total",
    "Netfilter changes made, by operation.",
    ["op"],
  );
  const failures = r.counter(
    "xferproxy_netfilter_failures_total",
    "Netfilter changes that failed, by operation.",
    ["op"],
  );
  const stale = r.counter(
    "xferproxy_stale_flows_removed_total",
    "Forwarded flows of no session removed (their purge failed, or the service died before it).",
  );
  const faulty = r.counter(
    "xferproxy_balancer_hosts_marked_faulty_total",
    "Times an internal server was marked faulty, by server.",
    ["host"],
  );
  const lost = r.counter(
    "xferproxy_log_lines_lost_total",
    "Log lines the service could not write (log directory full or unwritable).",
  );
  return {
    registry: r,
    started(rule, udp, seconds) {
      started.inc({ rule: String(rule), udp: String(udp) });
      setup.observe({ udp: String(udp) }, Math.max(0, seconds));
    },
    refused: (reason) => refused.inc({ reason }),
    ended(c) {
      // Rule 0 holds the forward daemon's sessions: its own /metrics counts them.
      if (c.rule === 0) return;
      const rule = String(c.rule);
      ended.inc({ rule, reason: c.reason });
      if (c.udp) {
        udpBytes.inc({ rule }, c.udp.bytes);
        udpPackets.inc({ rule }, c.udp.packets);
      }
      if (c.ssh) {
        sshBytes.inc({ direction: "in" }, c.ssh.in);
        sshBytes.inc({ direction: "out" }, c.ssh.out);
      }
    },
    active(registry, rules) {
      const byRule = new Map<number, number>();
      for (let rule = 1; rule <= rules; rule++) byRule.set(rule, 0);
      for (const e of registry.entries) {
        // Rule 0 holds the forward daemon's sessions: its own /metrics counts them.
        if (e.rule > 0) byRule.set(e.rule, (byRule.get(e.rule) ?? 0) + 1);
      }
      active.reset();
      for (const [rule, n] of byRule) active.set({ rule: String(rule) }, n);
    },
    netfilter: (op, ok) => (ok ? changes : failures).inc({ op }),
    staleFlowsRemoved: (count) => stale.inc({}, count),
    hostMarkedFaulty: (host) => faulty.inc({ host }),
    logLinesLost: (count) => lost.inc({}, count),
    draining: (on) => draining.set({}, on ? 1 : 0),
  };
}
