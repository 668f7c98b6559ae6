/**
 * conntrack: purge a session's flows (a stale, un-NATed entry would
 * blackhole the session; a leftover NATed one would keep forwarding after it
 * ends), count what they carried, and list a client's flows so its source
 * port can be learned.
 * @module
 */

import type { CommandRunner } from "../process/runner.ts";
import { parseIp } from "../net/ip.ts";
import type { DnatSession } from "./types.ts";
import {
  type Flow,
  type FlowCounters,
  type MarkedFlow,
  parseCounters,
  parseFlowLine,
  parseFlows,
  parseMarkedFlows,
  type PrintedFlow,
} from "./conntrack_text.ts";

export {
  type Flow,
  type FlowCounters,
  type MarkedFlow,
  parseCounters,
  parseFlows,
  parseMarkedFlows,
  type TrackedConnection,
} from "./conntrack_text.ts";

/** Which flows: a session's client, proxy address and port span, and its source port if learned. */
export type FlowSelector =
  & Pick<DnatSession, "client" | "proxy" | "proxyPort" | "portCount" | "clientPort">
  & {
    /**
     * The source port the session learned, where `clientPort` is left out to reach every port:
     * a flow from it is counted to this session, not to another of the same client.
     */
    readonly learnedPort?: number;
  };

/** A session's flows from every source port, learned or not. */
export function anyPort(s: FlowSelector): FlowSelector {
  const learned = s.clientPort ?? s.learnedPort;
  return {
    client: s.client,
    proxy: s.proxy,
    proxyPort: s.proxyPort,
    portCount: s.portCount,
    ...(learned === undefined ? {} : { learnedPort: learned }),
  };
}

/** conntrack arguments selecting original-direction flows to one proxy port. */
export function flowFilter(
  s: Pick<DnatSession, "client" | "proxy" | "clientPort">,
  proxyPort: number,
  protocol: "udp" | "tcp" = "udp",
): string[] {
  const family = s.client.family === 6 ? ["-f", "ipv6"] : [];
  const sport = s.clientPort === undefined ? [] : ["--sport", String(s.clientPort)];
  return [
    ...family,
    "-p",
    protocol,
    "--orig-src",
    s.client.text,
    "--orig-dst",
    s.proxy.text,
    ...sport,
    "--dport",
    String(proxyPort),
  ];
}

/**
 * Which marked flows to delete: a client's flows to one proxy port (from one source port where
 * `clientPort` is set), of one protocol.
 */
export type MarkedSelector =
  & Pick<DnatSession, "client" | "proxy" | "proxyPort" | "clientPort">
  & { readonly protocol: "udp" | "tcp" };

/** Both ends of one TCP connection. */
export interface TcpTuple {
  readonly client: { readonly ip: DnatSession["client"]; readonly port: number };
  readonly proxy: { readonly ip: DnatSession["client"]; readonly port: number };
}

/** A live session whose learned flows a purge leaves: what it selects, and where it sends. */
export type SparedSession = FlowSelector & Pick<DnatSession, "server" | "serverPort">;

/** conntrack operations for sessions. */
export interface Conntrack {
  /**
   * Deletes sessions' flows (every source port unless `clientPort` is set); returns what each
   * session's flows carried, in the order given. Flows from a source port a `spare` session
   * has learned, that its own rule sent to its server, stay: another live session of the same
   * client (users behind one NAT address), unless dozens of other flows share their proxy port.
   * Costs one conntrack walk of the whole table per proxy address, and one per proxy port with
   * flows to delete.
   */
  purge(
    sessions: readonly FlowSelector[],
    protocol?: "udp" | "tcp",
    spare?: readonly SparedSession[],
  ): Promise<FlowCounters[]>;
  /**
   * Deletes the sessions' flows that were never translated (their reply comes from the proxy
   * itself): packets that met no rule of ours, during a firewall reload say. Translated ones
   * are left alone: they carry on as before. One line per proxy port, in `-R` runs.
   */
  purgeUntranslated(sessions: readonly FlowSelector[], protocol?: "udp" | "tcp"): Promise<void>;
  /** Every client's UDP flows to a proxy address (one listing serves all its sessions). */
  flows(proxy: DnatSession["proxy"]): Promise<Flow[]>;
  /**
   * Every UDP and TCP flow of one address family that carries `mark`: one listing, whatever the
   * number of flows, proxies or sessions.
   */
  listMarked(mark: number, family: 4 | 6): Promise<MarkedFlow[]>;
  /**
   * Deletes the flows each selector matches that carry `mark` (a flow without it is never
   * deleted, whatever it matches): one conntrack walk of the whole table per selector.
   */
  removeMarked(selectors: readonly MarkedSelector[], mark: number): Promise<void>;
  /** Sets the conntrack mark of the session's live flows (every port of its span). */
  mark(s: FlowSelector, protocol: "udp" | "tcp", mark: number): Promise<void>;
}

function spanPorts(s: FlowSelector): number[] {
  return Array.from({ length: s.portCount }, (_, j) => s.proxyPort + j);
}

/** The proxy ports a protocol's flows reach: UDP the whole span, TCP the one port. */
function protocolPorts(s: FlowSelector, protocol: "udp" | "tcp"): number[] {
  return protocol === "udp" ? spanPorts(s) : [s.proxyPort];
}

/**
 * Finds which session each flow conntrack prints belongs to: its client, proxy, a port of its
 * span, and its source port once learned (where sessions of one client share the port, the one
 * that learned the flow's source port, else the first). Indexed by client: a thousand sessions
 * ending at once meet as many flows.
 */
function flowOwners(sessions: readonly FlowSelector[], protocol: "udp" | "tcp") {
  const byClient = new Map<string, number[]>();
  sessions.forEach((s, i) =>
    byClient.set(s.client.text, [...byClient.get(s.client.text) ?? [], i])
  );
  return (line: string): { index: number; owners: number[]; flow: PrintedFlow } | undefined => {
    const f = parseFlowLine(line);
    const candidates = f && byClient.get(parseIp(f.src)?.text ?? "");
    if (!f || !candidates) return undefined;
    const dst = parseIp(f.dst)?.text;
    const owners = candidates.filter((i) => {
      const s = sessions[i]!;
      return s.proxy.text === dst && protocolPorts(s, protocol).includes(f.dport) &&
        (s.clientPort === undefined || f.sport === s.clientPort);
    });
    const learned = (i: number) => sessions[i]!.clientPort ?? sessions[i]!.learnedPort;
    const index = owners.find((i) => learned(i) === f.sport) ?? owners[0];
    return index === undefined ? undefined : { index, owners, flow: f };
  };
}

/** Adds each flow conntrack printed to the session that owns it. */
function countBySession(
  printed: string,
  sessions: readonly FlowSelector[],
  protocol: "udp" | "tcp",
): FlowCounters[] {
  const owner = flowOwners(sessions, protocol);
  const totals = sessions.map(() => ({ bytes: 0, packets: 0 }));
  // Once each: conntrack-tools 1.4.8 prints its previous line again for an entry that expired
  // between its dump and its delete.
  for (const line of new Set(printed.split("\n"))) {
    const index = owner(line)?.index;
    if (index === undefined) continue;
    const c = parseCounters(line);
    totals[index] = {
      bytes: totals[index]!.bytes + c.bytes,
      packets: totals[index]!.packets + c.packets,
    };
  }
  return totals;
}

/**
 * What conntrack says when a delete leaves nothing behind: nothing matched, or an entry expired
 * between the dump `-D` walks and its delete (conntrack-tools up to 1.4.7 then stops there).
 */
const NOTHING_LEFT = /0 flow entries|such conntrack doesn't exist/;

/**
 * How many flows of a port a live session shares are deleted one by one, its own flow spared;
 * past that, the port's flows all go with one filter, that flow too (it starts again at its next
 * packet): a client that sent from thousands of source ports must not cost thousands of walks.
 */
export const MAX_SPARING_DELETES = 32;

/** How `conntrack` writes a mark it is to match. */
function markArg(mark: number): string {
  return `0x${mark.toString(16)}`;
}

/**
 * Lines of one `-R` run: each walks the whole table (about half a second at a quarter million
 * entries), and the runner kills a run after a minute, losing the lines it had not yet printed
 * (what those flows carried) and leaving the fallback to walk every line again.
 */
const RUN_LINES = 32;

/**
 * `conntrack -E` arguments for new UDP flows that carry `mark` (set by our rules only), of
 * either address family: the events that tell a learning session its first flow appeared.
 */
export function flowEventArgs(mark: number): string[] {
  return ["-E", "-e", "NEW", "-p", "udp", "--mark", `0x${mark.toString(16)}`];
}

/**
 * The new flow one `conntrack -E` line reports: client, proxy address (canonical text) and proxy
 * port; undefined for anything else it prints.
 */
export function parseFlowEvent(
  line: string,
): { src: string; dst: string; dport: number } | undefined {
  if (!line.includes("[NEW]")) return undefined;
  const f = parseFlowLine(line);
  const src = f && parseIp(f.src)?.text;
  const dst = f && parseIp(f.dst)?.text;
  return f && src && dst ? { src, dst, dport: f.dport } : undefined;
}

/** conntrack(8) through a runner. */
export function conntrackTool(runner: CommandRunner): Conntrack {
  const remove = async (args: string[]): Promise<string> => {
    const result = await runner.run("conntrack", ["-D", ...args]);
    // conntrack exits 1 when nothing matched: that is success here.
    if (result.code !== 0 && !NOTHING_LEFT.test(result.stderr)) {
      throw new Error(`conntrack -D failed: ${result.stderr.trim()}`);
    }
    return result.stdout;
  };
  const list = async (proxy: DnatSession["proxy"], protocol: "udp" | "tcp") => {
    const family = proxy.family === 6 ? ["-f", "ipv6"] : [];
    const result = await runner.run("conntrack", [
      "-L",
      ...family,
      "-p",
      protocol,
      "--orig-dst",
      proxy.text,
    ]);
    if (result.code !== 0) throw new Error(`conntrack -L failed: ${result.stderr.trim()}`);
    return result.stdout;
  };
  const flows = async (proxy: DnatSession["proxy"]) => parseFlows(await list(proxy, "udp"));
  /**
   * Deletes flows, each line a filter or a whole tuple, in `-R` runs (conntrack-tools 1.4.7+) of
   * at most RUN_LINES lines, or one process a line where a run is refused or stopped part way.
   * Every line is tried before a failure is thrown: each flow left keeps forwarding. Returns what
   * conntrack printed.
   */
  const removeAll = async (each: readonly string[][]): Promise<string> => {
    let printed = "";
    let failure: unknown;
    for (let i = 0; i < each.length; i += RUN_LINES) {
      const lines = each.slice(i, i + RUN_LINES);
      const run = await runner.run("conntrack", ["-R", "-"], {
        stdin: lines.map((args) => ["-D", ...args].join(" ")).join("\n") + "\n",
      });
      printed += run.stdout;
      if (run.code === 0) continue;
      for (const args of lines) {
        printed += await remove(args).catch((error) => {
          failure ??= error;
          return "";
        });
      }
    }
    if (failure !== undefined) throw failure;
    return printed;
  };
  return {
    async purge(sessions, protocol = "udp", spare = []) {
      // Every line conntrack runs walks the whole table, and a client chooses how many source
      // ports it sends from: list each proxy address's flows once, then delete each port's flows
      // with one filter, one by one only where a live session's flow must stay.
      const owner = flowOwners(sessions, protocol);
      const learned = spare.filter((s) => s.clientPort !== undefined);
      const sparing = flowOwners(learned, protocol);
      // Only what the live session's own rule made: another rule's flow from that port (a
      // forward session's, where an administrator let the port ranges overlap) goes.
      const spared = (line: string) => {
        const found = sparing(line);
        const reply = found?.flow.reply;
        return reply !== undefined && found!.owners.some((i) => {
          const s = learned[i]!;
          return parseIp(reply.src)?.text === s.server.text &&
            reply.sport === s.serverPort + found!.flow.dport - s.proxyPort;
        });
      };
      const ports = new Map<string, { filter: string[]; flows: string[][]; shared: boolean }>();
      const proxies = new Map(sessions.map((s) => [s.proxy.text, s.proxy]));
      for (const proxy of proxies.values()) {
        for (const line of (await list(proxy, protocol)).split("\n")) {
          const found = owner(line);
          if (!found) continue;
          const s = sessions[found.index]!;
          const filter = flowFilter(s, found.flow.dport, protocol);
          const port = ports.get(filter.join(" ")) ?? { filter, flows: [], shared: false };
          ports.set(filter.join(" "), port);
          if (spared(line)) {
            port.shared = true;
            continue;
          }
          port.flows.push(
            flowFilter({ ...s, clientPort: found.flow.sport }, found.flow.dport, protocol),
          );
        }
      }
      const lines = [...ports.values()].flatMap((p) =>
        p.flows.length === 0
          ? []
          : p.shared && p.flows.length <= MAX_SPARING_DELETES
          ? p.flows
          : [p.filter]
      );
      return countBySession(await removeAll(lines), sessions, protocol);
    },
    async purgeUntranslated(sessions, protocol = "udp") {
      await removeAll(
        sessions.flatMap((s) =>
          protocolPorts(s, protocol).map((port) => [
            ...flowFilter(s, port, protocol),
            "--reply-src",
            s.proxy.text,
          ])
        ),
      );
    },
    flows,
    async listMarked(mark, family) {
      // The family by name: which ones a listing without -f shows depends on the version.
      const result = await runner.run("conntrack", [
        "-L",
        "-f",
        family === 4 ? "ipv4" : "ipv6",
        "--mark",
        markArg(mark),
      ]);
      if (result.code !== 0) throw new Error(`conntrack -L failed: ${result.stderr.trim()}`);
      return parseMarkedFlows(result.stdout);
    },
    async removeMarked(selectors, mark) {
      if (selectors.length === 0) return;
      await removeAll(
        selectors.map((s) => [
          ...flowFilter(s, s.proxyPort, s.protocol),
          "--mark",
          markArg(mark),
        ]),
      );
    },
    async mark(s, protocol, mark) {
      for (const port of protocolPorts(s, protocol)) {
        const args = ["-U", ...flowFilter(s, port, protocol), "--mark", markArg(mark)];
        const result = await runner.run("conntrack", args);
        // conntrack exits 1 when nothing matched: nothing to mark is success here.
        if (result.code !== 0 && !/0 flow entries/.test(result.stderr)) {
          throw new Error(`conntrack -U failed: ${result.stderr.trim()}`);
        }
      }
    },
  };
}
