/**
 * The DNAT code's errors, in one module whatever the backend: callers catch
 * these, never a backend's own. Each is a `UserError`: one line that says
 * what to fix.
 * @module
 */

import { UserError } from "../errors.ts";

/** A netfilter tool or library refused a change; the message carries its words. */
export class NetfilterError extends UserError {}

/** A request the config, the caller's identity or the table of privileges does not allow. */
export class NotAuthorizedError extends UserError {
  override get userMessage(): string {
    return `dnat refused: ${this.message}`;
  }
}

/** ip_forward is off: forwarding cannot work. */
export class ForwardingDisabledError extends UserError {
  constructor(family: 4 | 6) {
    const sysctl = family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
    super(
      `${sysctl} is 0: enable it with "sysctl -w ${sysctl}=1" and set ${sysctl}=1 in /etc/sysctl.conf`,
    );
  }
}

/** The backend in use cannot do what a session needs (it declares what it can). */
export class UnsupportedError extends UserError {}

/**
 * Removing a session's forwarding failed: the session stays recorded, marked
 * for removal, and every reconcile round tries again.
 */
export class RemovalPendingError extends UserError {}
