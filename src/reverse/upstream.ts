/**
 * Choosing the internal server: the rule's `<host>`, or `<hosts>` in
 * round-robin order with failover. Each candidate is probed (TCP, SSH
 * version line, host key) before the session is handed to ssh; a host that
 * does not answer is marked faulty for 120 s and the next one is tried, a
 * host whose key is not the pinned one refuses the session.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { ReverseRule } from "../config/mod.ts";
import { FAULTY_SECONDS } from "../config/mod.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { HostPicker } from "../balancer/balancer.ts";
import {
  fingerprint,
  hostKeyAlgorithms,
  type KnownHostEntry,
  verifyHostKey,
} from "../ssh/known_hosts.ts";
import type { ProbeOutcome } from "../ssh/probe.ts";

/** The internal server a session goes to. */
export interface ChosenUpstream {
  readonly endpoint: IpEndpoint;
  /** Position in the rule's host list. */
  readonly index: number;
  /** The key types known_hosts pins for it: what the probe offered, and what ssh will offer. */
  readonly hostKeyAlgorithms: readonly string[];
  /** The fingerprint of the key the probe saw, when it got that far. */
  readonly fingerprint?: string;
}

/** Probes one server: TCP, version line and host key, within the timeout. */
export type Prober = (
  endpoint: IpEndpoint,
  hostKeyAlgorithms: readonly string[],
  timeoutMs: number,
) => Promise<ProbeOutcome>;

/** What choosing needs besides the rule. */
export interface ChooseOptions {
  readonly knownHosts: readonly KnownHostEntry[];
  readonly hosts: HostPicker;
  readonly probe: Prober;
  readonly log: Logger;
}

/** Every host failed or is marked faulty. */
export class NoUpstreamError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NoUpstreamError";
  }
}

/** The server's host key is not the pinned one: never failed over, always refused. */
export class HostKeyError extends Error {
  readonly presented: string;
  readonly expected: readonly string[];
  constructor(message: string, presented: string, expected: readonly string[]) {
    super(message);
    this.name = "HostKeyError";
    this.presented = presented;
    this.expected = expected;
  }
}

/** The order to try the rule's hosts in: the balancer's, or list order without one. */
async function tryOrder(rule: ReverseRule, options: ChooseOptions): Promise<readonly number[]> {
  const hostKeys = rule.upstreams.map(formatEndpoint);
  if (rule.upstreams.length <= 1) return rule.upstreams.map((_, i) => i);
  let order: readonly number[];
  try {
    const pick = await options.hosts.pick(rule);
    for (const skipped of pick.skipped) {
      options.log.debug("Skipping faulty server {server} until {until}", {
        server: hostKeys[skipped.index],
        until: new Date(skipped.until).toISOString(),
      });
    }
    order = pick.order;
  } catch (error) {
    // Balancing is a convenience: without it, sessions still go through in list order.
    options.log.warn("Balancer unavailable, using list order: {error}", {
      error: String(error),
    });
    return rule.upstreams.map((_, i) => i);
  }
  if (order.length === 0) {
    throw new NoUpstreamError(
      `All ${hostKeys.length} internal servers of rule ${rule.index} are marked faulty`,
    );
  }
  return order;
}

/**
 * The first host that answers with its pinned key, in balancer order.
 * @throws {HostKeyError} when a server's key is unknown, changed or revoked
 * @throws {NoUpstreamError} when no host answered
 */
export async function chooseUpstream(
  rule: ReverseRule,
  options: ChooseOptions,
): Promise<ChosenUpstream> {
  const balanced = rule.upstreams.length > 1;
  let lastFailure: string | undefined;
  for (const index of await tryOrder(rule, options)) {
    const endpoint = rule.upstreams[index] as IpEndpoint;
    const label = formatEndpoint(endpoint);
    const host = endpoint.ip.text;
    const algorithms = await hostKeyAlgorithms(options.knownHosts, host, endpoint.port);
    if (algorithms.length === 0) {
      throw new HostKeyError(`No known_hosts entry for ${label}`, "(not fetched)", []);
    }
    const outcome = await options.probe(endpoint, algorithms, rule.connectTimeout * 1000);
    if (outcome.kind === "failed") {
      lastFailure = outcome.message;
      if (balanced) {
        const marked = await options.hosts.failed(rule, index, outcome.message).catch((error) => {
          options.log.warn("Cannot record the faulty mark: {error}", { error: String(error) });
          return false;
        });
        if (marked) {
          options.log.warn(
            "Server {server} is not responding, marked faulty for {seconds} s: {reason}",
            { server: label, seconds: FAULTY_SECONDS, reason: outcome.message },
          );
        } else {
          options.log.warn("Server {server} is not responding, trying the next: {reason}", {
            server: label,
            reason: outcome.message,
          });
        }
      }
      continue;
    }
    if (outcome.offered) {
      throw new HostKeyError(
        `Host key of ${label} is changed: it offers none of the pinned types`,
        `(${outcome.offered.join(",")})`,
        algorithms,
      );
    }
    if (!outcome.hostKey) {
      options.log.debug(
        "Host key of {server} left to ssh: no key exchange in common with the probe",
        {
          server: label,
        },
      );
      return { endpoint, index, hostKeyAlgorithms: algorithms };
    }
    const verdict = await verifyHostKey(options.knownHosts, host, endpoint.port, outcome.hostKey);
    if (!verdict.ok) {
      throw new HostKeyError(
        `Host key of ${label} is ${verdict.reason}`,
        verdict.presented,
        verdict.expected,
      );
    }
    return {
      endpoint,
      index,
      hostKeyAlgorithms: algorithms,
      fingerprint: await fingerprint(outcome.hostKey),
    };
  }
  throw new NoUpstreamError(lastFailure ?? "No internal server answered");
}
