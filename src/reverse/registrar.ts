/**
 * A session's dealings with the root DNAT service: its id, its host order,
 * its registration. When the service runs, the session talks to it over
 * its socket (no sudo, no second process; the service reads who the session
 * is from the kernel and writes its closing line). When it does not, the
 * session falls back to a local id, the shared balancer file, and one sudo
 * call for FASP commands.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { HostPicker } from "../balancer/balancer.ts";
import type { IpEndpoint } from "../net/endpoint.ts";
import type { ReverseRule } from "../config/mod.ts";
import type { ServiceReply, ServiceRequest } from "../dnat/service_protocol.ts";
import type { UdpForwarder } from "./udp.ts";

/** What the session registers: where it goes, and whether it runs a FASP command. */
export interface Registering {
  readonly rule: ReverseRule;
  readonly upstream: IpEndpoint;
  readonly upstreamIndex: number;
  readonly udp: boolean;
  /** The proxy user, for the closing line. */
  readonly user: string;
}

/** How registration went, for the hand-over line. */
export type Registered = "forwarded" | "unavailable" | "none";

/** One session's registrar. */
export interface Registrar {
  /** The session's id: issued by the service, or made locally when it is down. */
  readonly id: string;
  /** "service" or "sudo": the path this session takes, for the log. */
  readonly via: "service" | "sudo";
  /** The DNAT service says this node is drained: new sessions are refused. */
  readonly draining?: true;
  readonly hosts: HostPicker;
  /** Registers before the hand-over; never throws (the SSH session goes on without UDP). */
  register(session: Registering): Promise<Registered>;
  close(): void;
}

/** One request and its reply over the service's socket (platform/service_link.ts). */
export interface ServiceLink {
  /** The reply; undefined when none came in time or the service hung up. */
  request(message: ServiceRequest, timeoutMs: number): Promise<ServiceReply | undefined>;
  close(): void;
}

/** Times, in ms, for the service's answers; installs may wait for another session's port. */
export const SERVICE_TIMEOUTS = { hello: 3000, pick: 3000, register: 20_000 } as const;

/** Tells the client UDP is unavailable, and logs why. */
export function udpUnavailable(log: Logger, tellClient: (line: string) => void, why: string) {
  const hint = /password is required|not allowed|may not run/.test(why)
    ? " (sudo refused: add the sudoers line from docs/dnat.md)"
    : "";
  log.error("UDP forwarding unavailable: {reason}{hint}", { reason: why, hint });
  tellClient("xferproxy: UDP forwarding is unavailable; the SSH session continues");
}

/**
 * The service's registrar, once it said hello; undefined when it did not
 * (the caller falls back).
 */
export async function serviceRegistrar(
  link: ServiceLink,
  log: () => Logger,
  tellClient: (line: string) => void,
): Promise<Registrar | undefined> {
  const hello = await link.request({ op: "hello" }, SERVICE_TIMEOUTS.hello);
  if (!hello || !("op" in hello) || hello.op !== "hello") {
    link.close();
    return undefined;
  }
  const hosts: HostPicker = {
    async pick(rule) {
      const reply = await link.request({ op: "pick", rule: rule.index }, SERVICE_TIMEOUTS.pick);
      if (!reply || !("op" in reply) || reply.op !== "pick") {
        throw new Error("the DNAT service gave no host order");
      }
      return { order: reply.order, skipped: reply.skipped };
    },
    async failed(rule, index, reason) {
      await link.request(
        { op: "failed", rule: rule.index, host: index, reason },
        SERVICE_TIMEOUTS.pick,
      );
      return false;
    },
  };
  return {
    id: hello.session,
    via: "service",
    ...(hello.draining ? { draining: true as const } : {}),
    hosts,
    async register(s) {
      const reply = await link.request({
        op: "register",
        rule: s.rule.index,
        host: s.upstreamIndex,
        server: s.upstream,
        udp: s.udp,
        user: s.user,
      }, SERVICE_TIMEOUTS.register);
      if (reply && "event" in reply) {
        if (reply.event === "installed") return "forwarded";
        if (reply.event === "registered") return "none";
        if (!s.udp) {
          log().error("The DNAT service did not register the session: {reason}", {
            reason: reply.reason,
          });
          return "none";
        }
        const why = reply.event === "refused" ? `refused: ${reply.reason}` : reply.reason;
        udpUnavailable(log(), tellClient, why);
        return "unavailable";
      }
      if (!s.udp) {
        log().error("The DNAT service did not answer the registration");
        return "none";
      }
      udpUnavailable(log(), tellClient, "the DNAT service did not answer in time");
      return "unavailable";
    },
    close: () => link.close(),
  };
}

/** The registrar while the service is down: a local id, the shared file, sudo for FASP. */
export function fallbackRegistrar(id: string, hosts: HostPicker, udp: UdpForwarder): Registrar {
  return {
    id,
    via: "sudo",
    hosts,
    async register(s) {
      if (!s.udp) return "none";
      const ok = await udp.register({
        rule: s.rule,
        upstream: s.upstream,
        upstreamIndex: s.upstreamIndex,
      });
      return ok ? "forwarded" : "unavailable";
    },
    close() {},
  };
}
