/**
 * Where a forward session may go. The proxy must never become a way back
 * inside: loopback, private, link-local, multicast and the proxy's own ranges
 * are refused unless the user's allow list names a prefix covering them.
 * @module
 */

import { asIpv4, type Cidr, cidrContains, type IpAddress, parseCidr } from "../net/ip.ts";

const NEVER_BY_DEFAULT = [
  "0.0.0.0/8",
  "10.0.0.0/8",
  "100.64.0.0/10",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "172.16.0.0/12",
  "192.0.0.0/24",
  "192.168.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
  "::/128",
  "::1/128",
  "fc00::/7",
  "fe80::/10",
  "ff00::/8",
].map((text) => parseCidr(text) as Cidr);

/** The verdict on one destination. */
export type DestinationVerdict = { readonly ok: true } | {
  readonly ok: false;
  readonly reason: string;
};

/** What the check needs. */
export interface DestinationQuery {
  /** As the client asked: an IP literal or a host name (lower case). */
  readonly requested: string;
  /** The address it resolved to (once, at allocation). */
  readonly address: IpAddress;
  /** The user's allow list; undefined when authentication is off (any public destination). */
  readonly allow?: readonly string[];
  /** The proxy's own networks. */
  readonly own: readonly Cidr[];
}

/** Decides whether a session to the address may be set up. */
export function checkDestination(q: DestinationQuery): DestinationVerdict {
  const ip = asIpv4(q.address) ?? q.address;
  const prefixes = (q.allow ?? []).map((a) => parseCidr(a)).filter((c): c is Cidr =>
    c !== undefined
  );
  const explicitly = prefixes.some((c) => cidrContains(c, ip) && c.prefix > 0);
  const inside = [...NEVER_BY_DEFAULT, ...q.own].find((c) => cidrContains(c, ip));
  if (inside && !explicitly) {
    return {
      ok: false,
      reason:
        `destination ${ip.text} is in ${inside.text}, which the proxy never reaches unless allowed explicitly`,
    };
  }
  if (q.allow === undefined) return { ok: true };
  const allowed = q.allow.includes("*") || explicitly ||
    prefixes.some((c) => cidrContains(c, ip)) ||
    q.allow.includes(q.requested.toLowerCase());
  return allowed
    ? { ok: true }
    : { ok: false, reason: `destination ${q.requested} is not in your allowed destinations` };
}
