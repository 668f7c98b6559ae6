/**
 * Rule selection: the first `<rule>` whose attributes all match the session.
 * @module
 */

import type { ReverseRule } from "../config/mod.ts";
import { cidrContains, type IpAddress } from "../net/ip.ts";
import type { DomainEndpoint } from "../net/endpoint.ts";

/** The session facts rules look at. */
export interface RuleQuery {
  readonly proxyIp: IpAddress;
  readonly proxyPort: number;
  readonly dialled?: DomainEndpoint;
}

/** True when every attribute of the rule matches; a rule without attributes matches all. */
export function ruleMatches(rule: ReverseRule, query: RuleQuery): boolean {
  if (rule.hostIp && !cidrContains(rule.hostIp, query.proxyIp)) return false;
  if (rule.hostDomain) {
    const dialled = query.dialled;
    if (!dialled || dialled.name !== rule.hostDomain.name) return false;
    // A rule port must equal the port the client named, or else the port it reached.
    if (
      rule.hostDomain.port !== undefined &&
      rule.hostDomain.port !== (dialled.port ?? query.proxyPort)
    ) return false;
  }
  return true;
}

/** The first matching rule, in file order. */
export function matchRule(
  rules: readonly ReverseRule[],
  query: RuleQuery,
): ReverseRule | undefined {
  return rules.find((rule) => ruleMatches(rule, query));
}
