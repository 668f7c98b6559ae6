/**
 * Where a forward session may go. The proxy must never become a way back
 * inside: loopback, private, link-local, multicast and the proxy's own ranges
 * are refused unless the user's allow list names a prefix covering the
 * destination that is at least as specific as the protected range
 * (`0.0.0.0/1` does not open 127.0.0.0/8). An IPv6 address that carries an
 * IPv4 one is judged by the IPv4 address.
 * @module
 */

import {
  asIpv4,
  type Cidr,
  cidrContains,
  type IpAddress,
  parseCidr,
  parseIpv4,
} from "../net/ip.ts";

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
  "fec0::/10",
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

/**
 * The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`),
 * IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::/96`, and the local-use
 * `64:ff9b:1::/48` with the address last) and 6to4 (`2002:AABB:CCDD::/48`).
 */
export function carriedIpv4(ip: IpAddress): IpAddress | undefined {
  const mapped = asIpv4(ip);
  if (mapped) return mapped;
  const b = ip.bytes;
  const v4 = (at: number) => parseIpv4(b.slice(at, at + 4).join("."));
  const zeros = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zeros(0, 12) && !zeros(12, 16) && !(zeros(12, 15) && b[15] === 1)) return v4(12);
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) {
    if (zeros(4, 12)) return v4(12);
    if (b[4] === 0x00 && b[5] === 0x01) return v4(12);
  }
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2);
  return undefined;
}

/** Decides whether a session to the address may be set up. */
export function checkDestination(q: DestinationQuery): DestinationVerdict {
  const ip = carriedIpv4(q.address) ?? q.address;
  const prefixes = (q.allow ?? []).map((a) => parseCidr(a)).filter((c): c is Cidr =>
    c !== undefined
  );
  const covering = prefixes.filter((c) => cidrContains(c, ip) && c.address.family === ip.family);
  // Every protected range the address is in must be opened by a prefix at least as narrow.
  const closed = [...NEVER_BY_DEFAULT, ...q.own].find((range) =>
    cidrContains(range, ip) && !covering.some((c) => c.prefix >= range.prefix)
  );
  if (closed) {
    return {
      ok: false,
      reason:
        `destination ${ip.text} is in ${closed.text}, which the proxy never reaches unless a prefix at least as specific is allowed`,
    };
  }
  if (q.allow === undefined) return { ok: true };
  const allowed = q.allow.includes("*") || covering.length > 0 ||
    q.allow.includes(q.requested.toLowerCase());
  return allowed
    ? { ok: true }
    : { ok: false, reason: `destination ${q.requested} is not in your allowed destinations` };
}
