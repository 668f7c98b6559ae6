/**
 * The balancer shared by all session processes: round-robin state and faulty
 * marks kept in a locked JSON file in the state directory.
 * @module
 */

import type { SharedJson } from "./shared_json.ts";
import { markFaulty, normalizeState, type Pick, pickHosts } from "./round_robin.ts";

/** Picks hosts and records failures. */
export interface Balancer {
  pick(ruleKey: string, hostKeys: readonly string[]): Promise<Pick>;
  markFaulty(hostKey: string, seconds: number): Promise<void>;
}

/** A balancer over shared state; `now` is injected for tests. */
export function createBalancer(store: SharedJson, now: () => number): Balancer {
  return {
    pick: (ruleKey, hostKeys) =>
      store.update((raw) => {
        const pick = pickHosts(normalizeState(raw), ruleKey, hostKeys, now());
        return { value: pick.state, result: pick };
      }),
    markFaulty: (hostKey, seconds) =>
      store.update((raw) => ({
        value: markFaulty(normalizeState(raw), hostKey, now(), seconds),
        result: undefined,
      })),
  };
}
