/**
 * What conntrack(8) prints, read: flows' original direction, where their
 * replies come from, their counters, and one TCP connection's state. Pure.
 * @module
 */

import { type IpAddress, parseIp } from "../net/ip.ts";

/** What flows carried, both directions together (needs net.netfilter.nf_conntrack_acct=1). */
export interface FlowCounters {
  readonly bytes: number;
  readonly packets: number;
}

/** One flow's original direction: the client's address and port, and the proxy port. */
export interface Flow {
  readonly src: string;
  readonly sport: number;
  readonly dport: number;
  /**
   * Its replies come from the proxy itself: no rule of ours translated it (it began before the
   * session's rule, or met none while the rules were gone), so it is no session's flow.
   */
  readonly untranslated?: true;
}

/** One flow `conntrack` printed: its original direction, and where its replies come from. */
export type PrintedFlow = Flow & { dst: string; reply?: { src: string; sport: number } };

/** The original direction of one flow `conntrack` printed, its proxy and reply source too. */
export function parseFlowLine(line: string): PrintedFlow | undefined {
  // The first src/dst/sport/dport of a line are the original direction's, the next the reply's.
  const src = /\bsrc=(\S+)/.exec(line)?.[1];
  const dst = /\bdst=(\S+)/.exec(line)?.[1];
  const sport = /\bsport=(\d+)\b/.exec(line)?.[1];
  const dport = /\bdport=(\d+)\b/.exec(line)?.[1];
  if (!src || !dst || !sport || !dport) return undefined;
  const reply = /\bdport=\d+\b.*?\bsrc=(\S+).*?\bsport=(\d+)\b/.exec(line);
  return {
    src,
    dst,
    sport: Number(sport),
    dport: Number(dport),
    ...(reply ? { reply: { src: reply[1]!, sport: Number(reply[2]) } } : {}),
  };
}

/**
 * The original direction of the flows `conntrack -L` printed, the client's address in our
 * canonical text (conntrack prints `::198.18.1.2` where we write `::c612:102`).
 */
export function parseFlows(listing: string): Flow[] {
  return listing.split("\n").flatMap((line) => {
    const f = parseFlowLine(line);
    if (!f) return [];
    // The reply from the very address and port the client sent to: nothing was translated (a
    // session whose server is the proxy itself on another port still counts as translated).
    const untranslated = f.reply !== undefined && f.reply.sport === f.dport &&
      (parseIp(f.reply.src)?.text ?? f.reply.src) === (parseIp(f.dst)?.text ?? f.dst);
    return [{
      src: parseIp(f.src)?.text ?? f.src,
      sport: f.sport,
      dport: f.dport,
      ...(untranslated ? { untranslated: true as const } : {}),
    }];
  });
}

/** A flow carrying a conntrack mark: its protocol, original direction, and what it carried. */
export interface MarkedFlow {
  readonly protocol: "udp" | "tcp";
  /** The client. */
  readonly src: IpAddress;
  /** The proxy address the client sent to. */
  readonly dst: IpAddress;
  readonly sport: number;
  /** The proxy port. */
  readonly dport: number;
  /** Both directions (0 without nf_conntrack_acct). */
  readonly counters: FlowCounters;
}

/** The UDP and TCP flows of a `conntrack -L` listing, addresses parsed (other protocols left out). */
export function parseMarkedFlows(listing: string): MarkedFlow[] {
  return listing.split("\n").flatMap((line) => {
    const protocol = /^(udp|tcp)\s/.exec(line)?.[1] as "udp" | "tcp" | undefined;
    const f = protocol && parseFlowLine(line);
    const src = f && parseIp(f.src);
    const dst = f && parseIp(f.dst);
    if (!protocol || !f || !src || !dst) return [];
    return [{ protocol, src, dst, sport: f.sport, dport: f.dport, counters: parseCounters(line) }];
  });
}

/** Sums the counters of every flow `conntrack -D` or `-L` printed (both directions). */
export function parseCounters(listing: string): FlowCounters {
  let bytes = 0;
  let packets = 0;
  for (const m of listing.matchAll(/\bpackets=(\d+) bytes=(\d+)\b/g)) {
    packets += Number(m[1]);
    bytes += Number(m[2]);
  }
  return { bytes, packets };
}

/** A TCP connection as conntrack tracks it: its state and what each direction carried. */
export interface TrackedConnection {
  /** ESTABLISHED, FIN_WAIT, TIME_WAIT, CLOSE … */
  readonly state: string;
  /** Client to proxy. */
  readonly original: FlowCounters;
  /** Proxy to client. */
  readonly reply: FlowCounters;
}
