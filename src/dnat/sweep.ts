/**
 * The sweep, a safety net under removal: forwarded flows that carry our conntrack mark but belong
 * to no session. The fixed accept and masquerade rules match every flow with the mark, so a flow
 * whose purge failed, or whose remover died between removing its rules and purging it, would go on
 * forwarding for as long as its client sends (a FASP sender never pauses long enough for conntrack
 * to forget it). Which flows those are is decided here, pure; `sweepStaleFlows` runs it.
 * @module
 */

import { errorText } from "../errors.ts";
import type { IpAddress } from "../net/ip.ts";
import {
  type Conntrack,
  type MarkedFlow,
  type MarkedSelector,
  MAX_SPARING_DELETES,
} from "./conntrack.ts";
import type { DnatDeps } from "./deps.ts";
import { clientSide, type DnatSession, formatPorts, SESSION_CT_MARK } from "./types.ts";

/** What a live session's flows look like: its client, proxy, span, learned port, and TCP port. */
export type FlowOwner = Pick<
  DnatSession,
  "client" | "proxy" | "proxyPort" | "portCount" | "clientPort" | "tcpServerPort"
>;

/** One proxy port's marked flows from one client that no session owns, and how they go. */
export interface StalePort {
  readonly protocol: "udp" | "tcp";
  readonly client: IpAddress;
  readonly proxy: IpAddress;
  readonly proxyPort: number;
  readonly flows: readonly MarkedFlow[];
  /**
   * The deletes: the port's flows with one filter, or where a live session learned another
   * source port of the client to this port, each flow by its source port (up to
   * MAX_SPARING_DELETES of them; past that the port's, whose live flow starts again at its next
   * packet: the client chooses how many source ports it sends from).
   */
  readonly selectors: readonly MarkedSelector[];
}

/** True when the owner forwards this protocol's flows from `client` to `proxy`:`port`. */
function covers(
  o: FlowOwner,
  f: Pick<MarkedFlow, "protocol" | "src" | "dst" | "dport">,
): boolean {
  if (o.client.text !== f.src.text || o.proxy.text !== f.dst.text) return false;
  return f.protocol === "udp"
    ? f.dport >= o.proxyPort && f.dport < o.proxyPort + o.portCount
    : o.tcpServerPort !== undefined && f.dport === o.proxyPort;
}

/** True when the flow is the owner's: a port it covers, from its learned source port if any. */
function owns(o: FlowOwner, f: MarkedFlow): boolean {
  // A learned port is a UDP source port; TCP (forward sessions' SSH port) is never narrowed.
  return covers(o, f) &&
    (f.protocol === "tcp" || o.clientPort === undefined || o.clientPort === f.sport);
}

/**
 * The marked flows no owner owns, by client and proxy port. A flow is owned when a session
 * forwards its client to its proxy port (a port of a UDP span, or a forward session's TCP port),
 * from the source port the session learned where it learned one.
 */
export function staleFlows(
  flows: readonly MarkedFlow[],
  owners: readonly FlowOwner[],
): StalePort[] {
  // Indexed by client: a thousand sessions may meet a client's thousands of source ports.
  const byClient = new Map<string, FlowOwner[]>();
  for (const o of owners) byClient.set(o.client.text, [...byClient.get(o.client.text) ?? [], o]);
  const ports = new Map<string, { first: MarkedFlow; flows: MarkedFlow[]; shared: boolean }>();
  for (const f of flows) {
    const candidates = byClient.get(f.src.text) ?? [];
    if (candidates.some((o) => owns(o, f))) continue;
    const key = `${f.protocol} ${f.src.text} ${f.dst.text} ${f.dport}`;
    const port = ports.get(key) ??
      { first: f, flows: [], shared: candidates.some((o) => covers(o, f)) };
    ports.set(key, port);
    port.flows.push(f);
  }
  return [...ports.values()].map(({ first, flows, shared }) => {
    const selector = {
      protocol: first.protocol,
      client: first.src,
      proxy: first.dst,
      proxyPort: first.dport,
    };
    const sports = [...new Set(flows.map((f) => f.sport))];
    return {
      ...selector,
      flows,
      selectors: shared && sports.length <= MAX_SPARING_DELETES
        ? sports.map((clientPort) => ({ ...selector, clientPort }))
        : [selector],
    };
  });
}

/** By conntrack tool (one a process): each family whose listing fails, and how it last failed. */
const unlisted = new WeakMap<Conntrack, Map<4 | 6, string>>();

/**
 * The flows that carry our mark, of both families. A family that cannot be listed (a host booted
 * without IPv6, say) leaves the other swept all the same; its failure is said once, not every
 * sweep, and so is its end.
 */
async function listMarkedFlows(deps: Pick<DnatDeps, "conntrack" | "log">): Promise<MarkedFlow[]> {
  const failing = unlisted.get(deps.conntrack) ?? new Map<4 | 6, string>();
  unlisted.set(deps.conntrack, failing);
  let flows: MarkedFlow[] = [];
  for (const family of [4, 6] as const) {
    let listed: MarkedFlow[];
    try {
      listed = await deps.conntrack.listMarked(SESSION_CT_MARK, family);
    } catch (error) {
      const text = errorText(error);
      const said = failing.get(family) === text;
      failing.set(family, text);
      deps.log[said ? "debug" : "warn"](
        "Cannot list the IPv{family} flows that carry the session mark, so none of them is swept until it can: {error}",
        { family, error: text },
      );
      continue;
    }
    if (failing.delete(family)) {
      deps.log.info("Listed the IPv{family} flows that carry the session mark again", { family });
    }
    // Not push(...): a client chooses how many flows its address-only session keeps, and a
    // spread of some 130000 of them overflows the stack.
    flows = flows.concat(listed);
  }
  return flows;
}

/**
 * Deletes the flows that carry our mark and belong to none of `owners` (every registered
 * session, and every session whose rules are still in the kernel), and logs one line per proxy
 * port. Costs one conntrack listing per address family, and one delete per proxy port with such
 * flows. Returns how many flows went. Call under the lock: a session registered meanwhile would
 * find its first flows deleted.
 */
export async function sweepStaleFlows(
  deps: Pick<DnatDeps, "conntrack" | "log">,
  owners: readonly FlowOwner[],
): Promise<number> {
  const stale = staleFlows(await listMarkedFlows(deps), owners);
  if (stale.length === 0) return 0;
  await deps.conntrack.removeMarked(stale.flatMap((p) => p.selectors), SESSION_CT_MARK);
  let swept = 0;
  for (const p of stale) {
    swept += p.flows.length;
    const sports = new Set(p.flows.map((f) => f.sport));
    const [only] = sports;
    deps.log.warn(
      `Removed stale ${p.protocol.toUpperCase()} forwarding flows between {client} and {proxy} (no session)`,
      {
        client: clientSide({
          client: p.client,
          ...(sports.size === 1 ? { clientPort: only } : {}),
        }),
        proxy: formatPorts(p.proxy, p.proxyPort, 1),
        protocol: p.protocol,
        flows: p.flows.length,
        bytes: p.flows.reduce((n, f) => n + f.counters.bytes, 0),
        packets: p.flows.reduce((n, f) => n + f.counters.packets, 0),
      },
    );
  }
  return swept;
}
