/**
 * A session's report that a server did not answer, checked by the service before it marks the
 * server faulty for every session: the session's word alone marks nothing.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { Balancer } from "../balancer/balancer.ts";
import { FAULTY_SECONDS } from "../config/mod.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";

/** What checking a reported server needs. */
export interface FaultyCheckDeps {
  reachable(endpoint: IpEndpoint, timeoutMs: number): Promise<boolean>;
  readonly balancer: Pick<Balancer, "markFaulty">;
  readonly metrics?: { hostMarkedFaulty(host: string): void };
  readonly log: Logger;
}

/**
 * Checks reported servers in the background, one check per server at a time: reports meanwhile
 * join the check under way (a burst of sessions, or a group member reporting in a loop, would
 * otherwise each have the root service open one more connection to the server, without bound).
 */
export function faultyChecker(
  deps: FaultyCheckDeps,
): (host: IpEndpoint, timeoutMs: number, reason: string) => void {
  const checking = new Set<string>();
  return (host, timeoutMs, reason) => {
    const label = formatEndpoint(host);
    if (checking.has(label)) return;
    checking.add(label);
    deps.reachable(host, timeoutMs).then(async (answers) => {
      if (answers) {
        deps.log.debug("A session found {server} unreachable ({reason}); it answers here", {
          server: label,
          reason,
        });
        return;
      }
      await deps.balancer.markFaulty(label, FAULTY_SECONDS);
      deps.metrics?.hostMarkedFaulty(label);
      deps.log.warn("Server {server} is not responding, marked faulty for {seconds} s: {reason}", {
        server: label,
        seconds: FAULTY_SECONDS,
        reason,
      });
    }).catch((error) =>
      deps.log.warn("Cannot check server {server}: {error}", {
        server: label,
        error: String(error),
      })
    ).finally(() => checking.delete(label));
  };
}
