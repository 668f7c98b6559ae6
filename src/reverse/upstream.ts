/**
 * Choosing and logging in to the internal server: the rule's `<host>`, or
 * `<hosts>` in round-robin order with failover, marking hosts that do not
 * answer as faulty for 120 s.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { ReverseRule } from "../config/mod.ts";
import { FAULTY_SECONDS } from "../config/mod.ts";
import { formatEndpoint, type IpEndpoint } from "../net/endpoint.ts";
import type { Balancer } from "../balancer/balancer.ts";
import { type UpstreamConnection, UpstreamError, type UpstreamSpec } from "../ssh/bridge.ts";
import { hostKeyAlgorithms, type KnownHostEntry, verifyHostKey } from "../ssh/known_hosts.ts";

/** The internal server a session is bridged to. */
export interface ChosenUpstream {
  readonly connection: UpstreamConnection;
  readonly endpoint: IpEndpoint;
  /** Position in the rule's host list (host i is exposed on proxy_port + i). */
  readonly index: number;
}

/** What choosing needs besides the rule. */
export interface ChooseOptions {
  readonly username: string;
  readonly privateKey: string;
  readonly keyPath: string;
  readonly knownHosts: readonly KnownHostEntry[];
  readonly balancer: Balancer;
  readonly connect: (spec: UpstreamSpec) => Promise<UpstreamConnection>;
  readonly log: Logger;
}

/** Every host failed or is marked faulty. */
export class NoUpstreamError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "NoUpstreamError";
  }
}

/** A stable key for a rule's rotation counter: its position and host list. */
export function ruleKey(rule: ReverseRule): string {
  return `${rule.index}:${rule.upstreams.map(formatEndpoint).join(",")}`;
}

/**
 * Connects to the first host that answers, in balancer order.
 * @throws {UpstreamError} for failures that must not fail over (host key, auth, key)
 * @throws {NoUpstreamError} when no host could be reached
 */
export async function chooseUpstream(
  rule: ReverseRule,
  options: ChooseOptions,
): Promise<ChosenUpstream> {
  const hostKeys = rule.upstreams.map(formatEndpoint);
  const balanced = rule.upstreams.length > 1;
  let order: readonly number[] = rule.upstreams.map((_, i) => i);
  if (balanced) {
    try {
      const pick = await options.balancer.pick(ruleKey(rule), hostKeys);
      for (const skipped of pick.skipped) {
        options.log.debug("Skipping faulty server {server} until {until}", {
          server: hostKeys[skipped.index],
          until: new Date(skipped.until).toISOString(),
        });
      }
      order = pick.order;
    } catch (error) {
      // The shared state is a convenience: without it, sessions still go through in list order.
      options.log.warn("Balancer state unavailable, using list order: {error}", {
        error: String(error),
      });
    }
    if (order.length === 0) {
      throw new NoUpstreamError(
        `All ${hostKeys.length} internal servers of rule ${rule.index} are marked faulty`,
      );
    }
  }
  let lastError: UpstreamError | undefined;
  for (const index of order) {
    const endpoint = rule.upstreams[index] as IpEndpoint;
    const host = endpoint.ip.text;
    try {
      const connection = await options.connect({
        host,
        port: endpoint.port,
        username: options.username,
        privateKey: options.privateKey,
        keyPath: options.keyPath,
        timeoutSeconds: rule.connectTimeout,
        hostKeyAlgorithms: hostKeyAlgorithms(options.knownHosts, host, endpoint.port),
        verifyHostKey: (blob) => verifyHostKey(options.knownHosts, host, endpoint.port, blob),
      });
      return { connection, endpoint, index };
    } catch (error) {
      if (!(error instanceof UpstreamError) || !error.marksFaulty) throw error;
      lastError = error;
      if (balanced) {
        options.log.warn(
          "Server {server} is not responding, marked faulty for {seconds} s: {reason}",
          {
            server: hostKeys[index],
            seconds: FAULTY_SECONDS,
            reason: error.message,
          },
        );
        await options.balancer.markFaulty(hostKeys[index] as string, FAULTY_SECONDS).catch(
          () => {},
        );
      }
    }
  }
  throw new NoUpstreamError(lastError?.message ?? "No internal server answered", {
    cause: lastError,
  });
}
