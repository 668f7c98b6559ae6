/**
 * Every privileged action, who may ask for it and on whose sessions it acts,
 * in one table (as OpenSSH's monitor lists the requests its unprivileged
 * child may make). Two ways in: `xferproxy dnat ACTION` (as root, or through
 * the sudoers line every proxy group member has), and the root DNAT
 * service's socket (root and the proxy group may connect). The tables are
 * typed by the actions and requests themselves, so a new one cannot be
 * added without its entry; `runDnat` and the service refuse by them, and
 * docs/dnat.md's table is held to them by a test.
 * @module
 */

import type { DnatAction } from "./contract.ts";
import type { ServiceRequest } from "./service_protocol.ts";

/** How a request reaches root: a root shell, sudo (a proxy group member), or the service's socket. */
export type Channel = "root" | "sudo" | "socket";

/** One privileged action. */
export interface PrivilegedAction {
  /** The ways in it is taken from. */
  readonly channels: readonly Channel[];
  /** Who the caller is taken to be, and which sessions it may touch. */
  readonly scope: string;
}

/** `xferproxy dnat ACTION`. */
export const DNAT_COMMANDS: { readonly [A in DnatAction]: PrivilegedAction } = {
  add: {
    channels: ["root", "sudo"],
    scope:
      "sudo: the process that ran sudo, descending from an sshd connection whose addresses it gets; root: names owner and addresses",
  },
  del: {
    channels: ["root", "sudo"],
    scope: "sudo: the caller's own sessions; root: any, and rules only the kernel holds",
  },
  list: {
    channels: ["root", "sudo"],
    scope: "sudo: the caller's own sessions; root: all, and rules only the kernel holds",
  },
  reap: {
    channels: ["root", "sudo"],
    scope: "sudo: the caller's sessions whose owner ended; root: all such, orphans, and --all",
  },
  serve: { channels: ["root"], scope: "the DNAT service itself" },
  drain: { channels: ["root"], scope: "the node: new sessions refused" },
  undrain: { channels: ["root"], scope: "the node: new sessions taken again" },
};

/** Requests on the service's socket; the peer is who the kernel says connected. */
export const SERVICE_REQUESTS: { readonly [R in ServiceRequest["op"]]: PrivilegedAction } = {
  hello: {
    channels: ["socket"],
    scope: "the peer (credentials, pidfd) and its sshd connection; issues the session's id",
  },
  decide: {
    channels: ["socket"],
    scope:
      "the peer's own whole session (as hello, then the service's config decides and registers it); USER must be the peer's account",
  },
  pick: { channels: ["socket"], scope: "the rule's host order; changes no one's state" },
  failed: {
    channels: ["socket"],
    scope:
      "a host the peer could not reach: the service probes it (one probe at a time) before marking it",
  },
  register: {
    channels: ["socket"],
    scope: "the peer's own session, once, to a host of the rule its addresses match",
  },
};

/**
 * Why `action` is refused to a sudo caller (uid `uid`), or undefined when
 * sudo may ask for it.
 */
export function refusedThroughSudo(action: DnatAction, uid: number): string | undefined {
  if (DNAT_COMMANDS[action].channels.includes("sudo")) return undefined;
  return action === "serve"
    ? "dnat serve is the root DNAT service: run it as root"
    : `dnat ${action} is for root: through sudo it counts as uid ${uid}; run it from a root shell (sudo -i)`;
}
