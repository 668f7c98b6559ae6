/**
 * Probing an internal server once for many sessions, in the DNAT service
 * that decides them: sessions that ask while a probe of the same server is
 * under way share its outcome, and for `windowMs` after a server answered,
 * a session only checks that its host still accepts connections on the
 * port (a fraction of a millisecond) instead of a new SSH handshake
 * (~40 ms here, and a process the server starts each time), and not even
 * that within `freshMs` of the last check; sessions asking during a check
 * share it. An answer older than `refreshMs` is probed again in the
 * background by the session that finds it, so while sessions keep coming
 * and the server keeps answering, none of them waits for a handshake. A
 * server that is down or refuses is found at the next check, and failover
 * works as before (a probe begun earlier cannot bring its answer back); one
 * only slow to accept fails the sessions that waited on it and keeps its
 * answer, unless the background probe fails or runs out of time too (a hung
 * sshd that still accepts): then the next session probes in full. What a
 * reused answer cannot see is a host key changed since it was probed, which
 * ssh itself then refuses, and a server that went down in the last `freshMs`.
 * Pure.
 * @module
 */

import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { ProbeOutcome } from "../ssh/probe.ts";
import type { Prober } from "./upstream.ts";

/** How long a server's answer is reused (its host still checked, unless it was just now). */
export const PROBE_REUSE_MS = 30_000;
/**
 * After how long a reused answer is probed again in the background: with a session every 30 s or
 * more often, no session waits for a full probe (~40 ms) once the first has.
 */
export const PROBE_REFRESH_MS = 15_000;
/**
 * How long a check (a probe or a connect) stands for the next sessions without any connection: in
 * a burst, sessions arriving together would otherwise each open one more connection to the server.
 */
export const CHECK_FRESH_MS = 2_000;

/** What reusing needs besides the full probe. */
export interface ReuseOptions {
  readonly now: () => number;
  readonly windowMs: number;
  /** Age of an answer after which a session that reuses it probes again in the background. */
  readonly refreshMs: number;
  /** How long a successful check stands without a new connection (`CHECK_FRESH_MS`). */
  readonly freshMs: number;
  /** Connects only: undefined when the host accepts on the port, else the failure. */
  reach(endpoint: IpEndpoint, timeoutMs: number): Promise<ProbeOutcome | undefined>;
}

/** `probe`, reusing answers as the module says. */
export function reusingProber(probe: Prober, options: ReuseOptions): Prober {
  /** The last answer, when it was probed, and when its host was last seen accepting. */
  const answered = new Map<string, { at: number; checked: number; outcome: ProbeOutcome }>();
  /** Probes under way; one whose server was found down meanwhile is dropped and stores nothing. */
  const inFlight = new Map<string, { flight: Promise<ProbeOutcome>; drop(): void }>();
  /** Connect checks under way: sessions asking meanwhile share one (a burst's 20 a second). */
  const reaching = new Map<string, Promise<ProbeOutcome | undefined>>();
  const reach = (key: string, endpoint: IpEndpoint, timeoutMs: number) => {
    const shared = reaching.get(key);
    if (shared) return shared;
    const check = options.reach(endpoint, timeoutMs).finally(() => reaching.delete(key));
    reaching.set(key, check);
    return check;
  };
  /** A server found down: its answer goes, and a probe begun before cannot bring it back. */
  const forget = (key: string) => {
    answered.delete(key);
    inFlight.get(key)?.drop();
    inFlight.delete(key);
  };
  const start = (key: string, endpoint: IpEndpoint, algorithms: readonly string[], ms: number) => {
    // Stamped when it connected, not when it ended: what it saw is that old.
    const started = options.now();
    let current = true;
    const flight = probe(endpoint, algorithms, ms).then((outcome) => {
      if (current) {
        if (outcome.kind === "answered") {
          answered.set(key, { at: started, checked: started, outcome });
        } else answered.delete(key);
      }
      return outcome;
    }, (error) => {
      if (current) answered.delete(key);
      throw error;
    }).finally(() => {
      if (inFlight.get(key)?.flight === flight) inFlight.delete(key);
    });
    inFlight.set(key, { flight, drop: () => current = false });
    return flight;
  };
  return async (endpoint, hostKeyAlgorithms, timeoutMs) => {
    const key = `${formatEndpoint(endpoint)} ${hostKeyAlgorithms.join(",")}`;
    const known = answered.get(key);
    if (known && options.now() - known.at < options.windowMs) {
      if (options.now() - known.at >= options.refreshMs && !inFlight.has(key)) {
        // Its outcome is for the next sessions; a failure there makes the next one probe in full.
        start(key, endpoint, hostKeyAlgorithms, timeoutMs).catch(() => {});
      }
      if (options.now() - known.checked < options.freshMs) return known.outcome;
      const failure = await reach(key, endpoint, timeoutMs);
      if (!failure) {
        known.checked = options.now();
        return known.outcome;
      }
      // A host that refuses is down: the next session probes it in full. One that was only slow to
      // accept (a busy sshd) keeps its answer, so the next sessions check again with a bare connect
      // instead of each running an SSH handshake on the service's one thread.
      if (failure.kind !== "failed" || failure.reason !== "timeout") forget(key);
      return failure;
    }
    // Each session gets its whole time: one that joined a probe started earlier, which then ran
    // out of time, probes again with what is left of its own.
    const deadline = options.now() + timeoutMs;
    for (;;) {
      const shared = inFlight.get(key)?.flight;
      const outcome = await (shared ??
        start(key, endpoint, hostKeyAlgorithms, deadline - options.now()));
      const left = deadline - options.now();
      if (!shared || outcome.kind !== "failed" || outcome.reason !== "timeout" || left <= 0) {
        return outcome;
      }
    }
  };
}
