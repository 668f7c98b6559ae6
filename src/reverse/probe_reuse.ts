/**
 * Probing an internal server once for many sessions, in the DNAT service
 * that decides them: sessions that ask while a probe of the same server is
 * under way share its outcome, and for `windowMs` after a server answered,
 * a session only checks that its host still accepts connections on the
 * port (a fraction of a millisecond) instead of a new SSH handshake
 * (~40 ms here, and a process the server starts each time). A server that
 * is down or refuses is still found at once, and failover works as before;
 * what a reused answer cannot see is a host key changed within the window,
 * which ssh itself then refuses. Pure.
 * @module
 */

import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { ProbeOutcome } from "../ssh/probe.ts";
import type { Prober } from "./upstream.ts";

/** How long a server's answer is reused (its host still checked each time). */
export const PROBE_REUSE_MS = 30_000;

/** What reusing needs besides the full probe. */
export interface ReuseOptions {
  readonly now: () => number;
  readonly windowMs: number;
  /** Connects only: undefined when the host accepts on the port, else the failure. */
  reach(endpoint: IpEndpoint, timeoutMs: number): Promise<ProbeOutcome | undefined>;
}

/** `probe`, reusing answers as the module says. */
export function reusingProber(probe: Prober, options: ReuseOptions): Prober {
  const answered = new Map<string, { at: number; outcome: ProbeOutcome }>();
  const inFlight = new Map<string, Promise<ProbeOutcome>>();
  const start = (key: string, endpoint: IpEndpoint, algorithms: readonly string[], ms: number) => {
    const flight = probe(endpoint, algorithms, ms).then((outcome) => {
      if (outcome.kind === "answered") answered.set(key, { at: options.now(), outcome });
      else answered.delete(key);
      return outcome;
    }).finally(() => inFlight.delete(key));
    inFlight.set(key, flight);
    return flight;
  };
  return async (endpoint, hostKeyAlgorithms, timeoutMs) => {
    const key = `${formatEndpoint(endpoint)} ${hostKeyAlgorithms.join(",")}`;
    const known = answered.get(key);
    if (known && options.now() - known.at < options.windowMs) {
      const failure = await options.reach(endpoint, timeoutMs);
      if (!failure) return known.outcome;
      answered.delete(key);
      return failure;
    }
    // Each session gets its whole time: one that joined a probe started earlier, which then ran
    // out of time, probes again with what is left of its own.
    const deadline = options.now() + timeoutMs;
    for (;;) {
      const shared = inFlight.get(key);
      const outcome = await (shared ??
        start(key, endpoint, hostKeyAlgorithms, deadline - options.now()));
      const left = deadline - options.now();
      if (!shared || outcome.kind !== "failed" || outcome.reason !== "timeout" || left <= 0) {
        return outcome;
      }
    }
  };
}
