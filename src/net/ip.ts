/**
 * IP literals and CIDR prefixes, parsed strictly into bytes so that
 * matching and rule text never depend on how an address was spelled.
 * @module
 */

/** A parsed IPv4 or IPv6 address. */
export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 or 16 bytes, network order. */
  readonly bytes: readonly number[];
  /** Canonical text: dotted quad, or RFC 5952 compressed IPv6. */
  readonly text: string;
}

/** An address prefix such as `198.18.0.0/15` or `2001:db8::/32`. */
export interface Cidr {
  readonly address: IpAddress;
  readonly prefix: number;
  /** Canonical text, `address/prefix` (the prefix is kept even when full). */
  readonly text: string;
}

const OCTET = "(25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)";
/** A dotted quad without leading zeros: one expression, because registries parse thousands. */
const IPV4 = new RegExp(`^${OCTET}\\.${OCTET}\\.${OCTET}\\.${OCTET}$`);
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;

/** Parses a dotted-quad IPv4 literal; returns undefined for anything else. */
export function parseIpv4(text: string): IpAddress | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  return { family: 4, bytes: [Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4])], text };
}

/** Parses an IPv6 literal (with `::` and an optional embedded IPv4 tail); no zone ids. */
export function parseIpv6(text: string): IpAddress | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const out: number[] = [];
    const parts = half.split(":");
    for (const [i, part] of parts.entries()) {
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        const [a = 0, b = 0, c = 0, d = 0] = v4.bytes;
        out.push((a << 8) | b, (c << 8) | d);
      } else if (IPV6_GROUP.test(part)) {
        out.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return out;
  };
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    groups = head;
  }
  if (groups.length !== 8) return undefined;
  const bytes = groups.flatMap((g) => [g >> 8, g & 0xff]);
  return { family: 6, bytes, text: formatIpv6(groups) };
}

/** Parses an IPv4 or IPv6 literal; returns undefined when it is neither. */
export function parseIp(text: string): IpAddress | undefined {
  return text.includes(":") ? parseIpv6(text) : parseIpv4(text);
}

/** Parses `address/prefix` or a bare address (a full-length prefix). */
export function parseCidr(text: string): Cidr | undefined {
  const [addr = "", prefixText, extra] = text.split("/");
  if (extra !== undefined) return undefined;
  const address = parseIp(addr);
  if (!address) return undefined;
  const max = address.family === 4 ? 32 : 128;
  let prefix = max;
  if (prefixText !== undefined) {
    if (!/^\d{1,3}$/.test(prefixText)) return undefined;
    prefix = Number(prefixText);
    if (prefix > max) return undefined;
  }
  return { address, prefix, text: `${address.text}/${prefix}` };
}

/** True when `ip` lies inside `cidr`; an IPv4-mapped IPv6 address matches IPv4 prefixes. */
export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  const candidate = cidr.address.family === 4 ? asIpv4(ip) : ip;
  if (!candidate || candidate.family !== cidr.address.family) return false;
  let bits = cidr.prefix;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((candidate.bytes[i] ?? 0) & mask) !== ((cidr.address.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** The IPv4 address itself, or the IPv4 inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`). */
export function asIpv4(ip: IpAddress): IpAddress | undefined {
  if (ip.family === 4) return ip;
  const b = ip.bytes;
  const mapped = b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff;
  return mapped ? parseIpv4(b.slice(12).join(".")) : undefined;
}

function formatIpv6(groups: number[]): string {
  // RFC 5952: compress the longest run (length >= 2) of zero groups, the first on a tie.
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  const left = hex.slice(0, bestStart).join(":");
  const right = hex.slice(bestStart + bestLen).join(":");
  return `${left}::${right}`;
}
