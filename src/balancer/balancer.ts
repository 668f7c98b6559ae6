/**
 * The balancer shared by all session processes: round-robin state and faulty
 * marks kept in a locked JSON file in the state directory.
 * @module
 */

import type { SharedJson } from "./shared_json.ts";
import { markFaulty, normalizeState, type Pick, pickHosts } from "./round_robin.ts";
import type { ReverseRule } from "../config/mod.ts";
import { FAULTY_SECONDS } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";

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

/** A stable key for a rule's rotation counter: its position and host list. */
export function ruleKey(rule: ReverseRule): string {
  return `${rule.index}:${rule.upstreams.map(formatEndpoint).join(",")}`;
}

/** A rule's hosts in the order to try them, and those left out as faulty. */
export interface HostOrder {
  /** Indexes into the rule's host list. */
  readonly order: readonly number[];
  readonly skipped: readonly { readonly index: number; readonly until: number }[];
}

/**
 * What a session asks of load balancing: the DNAT service's (which keeps
 * rotation and marks out of the group's reach), or the shared file's when
 * the service is down.
 */
export interface HostPicker {
  pick(rule: ReverseRule): Promise<HostOrder>;
  /**
   * Host `index` did not answer. True when this picker marked it faulty
   * itself; false when it only reported it (the service checks first).
   */
  failed(rule: ReverseRule, index: number, reason: string): Promise<boolean>;
}

/** A picker over a balancer: its marks are taken on the session's word. */
export function balancerPicker(balancer: Balancer): HostPicker {
  return {
    pick: (rule) => balancer.pick(ruleKey(rule), rule.upstreams.map(formatEndpoint)),
    async failed(rule, index) {
      const host = rule.upstreams[index];
      if (host) await balancer.markFaulty(formatEndpoint(host), FAULTY_SECONDS);
      return true;
    },
  };
}
