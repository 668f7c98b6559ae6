/**
 * Two directors sharing the VIP with keepalived (VRRP), in front of two xferproxy nodes, in
 * network namespaces; a segment namespace holds the two bridges everything plugs into:
 *
 *   clients (198.18.5.10…) ─┐ bridge "out" ┌─ director 1: d0 198.18.5.1, d1 198.18.6.251 ─┐ bridge "in"
 *                           └──────────────┴─ director 2: d0 198.18.5.2, d1 198.18.6.252 ─┴─ node 1 (198.18.6.2)
 *                                                                                            └ node 2 (198.18.6.3)
 *
 * Each director runs examples/scale-out/director.sh and keepalived with
 * examples/scale-out/keepalived.conf (the bed's addresses and interfaces put in for the example's),
 * its own pid files, its log to a file: nothing is shared with the host's keepalived. The VRRP
 * master holds the VIP 198.18.5.100 on d0 and the nodes' gateway 198.18.6.1 on d1. Nodes are the
 * scale bed's (scale_bed.ts). Everything is removed by `close()`.
 * @module
 */

import { must, type Ran, run, waitFor } from "./exec.ts";
import { addNamespaces, addVeth } from "./netns.ts";
import { ROOT } from "./paths.ts";
import { namespaceName } from "./prefix.ts";
import {
  SCALE_IP,
  type ScaleNode,
  scaleNodes,
  sshNode,
  startDirector,
  startNodes,
} from "./scale_bed.ts";

/** The bed's addresses besides the scale bed's VIP, nodes and clients. */
export const VRRP_IP = {
  /** The nodes' default route, held with the VIP by the VRRP master. */
  gateway: "198.18.6.1",
  /** Director d's own address on the clients' side. */
  outside: (d: number) => `198.18.5.${d}`,
  /** Director d's own address on the nodes' side. */
  inside: (d: number) => `198.18.6.${250 + d}`,
} as const;

/** The example configuration both directors run. */
export const KEEPALIVED_EXAMPLE = `${ROOT}examples/scale-out/keepalived.conf`;

/** One director. */
export interface VrrpDirector {
  /** 1 or 2; keepalived's config id is `director${d}`. */
  readonly d: number;
  readonly ns: string;
  /** Its pid files, config and logs. */
  readonly dir: string;
  /** The segment namespace's ends of its links (to cut it off the network). */
  readonly links: readonly string[];
}

/** A running bed. */
export interface VrrpBed {
  readonly nodes: readonly ScaleNode[];
  readonly clients: readonly string[];
  readonly clientNs: string;
  readonly segmentNs: string;
  readonly directors: readonly VrrpDirector[];
  /** Starts keepalived on director d; resolves once it has started its VRRP process. */
  startKeepalived(d: number): Promise<void>;
  /** keepalived's main process id on director d, from its pid file. */
  keepalivedPid(d: number): Promise<number>;
  /** What keepalived on director d logged so far. */
  keepalivedLog(d: number): Promise<string>;
  /** Per director (index d - 1): which of the VIP and the gateway address it holds. */
  held(): Promise<string[][]>;
  /**
   * Whether the neighbours send to director d: the clients' entry for the VIP and each node's for
   * the gateway name its MAC, or there is none yet (the next packet asks who holds the address).
   */
  sendTo(d: number): Promise<boolean>;
  /** The node (1, 2, …) whose sshd answered an SSH connection from `client` to the VIP. */
  sshNode(client: string): Promise<number | undefined>;
  /** Whether director d translated an SSH connection from `client` to the VIP (conntrack). */
  carried(d: number, client: string): Promise<boolean>;
  /** Runs a program in a namespace. */
  inNs(ns: string, argv: string[], timeoutMs?: number): Promise<Ran>;
  /** For a failure message: who holds what, who the neighbours send to, keepalived's last lines. */
  describe(): Promise<string>;
  close(): Promise<void>;
}

/** Builds the bed with two directors, two nodes and `clients` client addresses. Needs root. */
export async function createVrrpBed(clients = 12): Promise<VrrpBed> {
  const id = namespaceName("");
  const clientNs = `${id}c`;
  const segmentNs = `${id}s`;
  const dir = await Deno.makeTempDir({ prefix: "xferproxy-vrrp-" });
  await Deno.chmod(dir, 0o755);
  const directors: VrrpDirector[] = [1, 2].map((d) => ({
    d,
    ns: `${id}d${d}`,
    dir: `${dir}/director${d}`,
    links: [`o${d}`, `i${d}`],
  }));
  const nodes = scaleNodes([`${id}n1`, `${id}n2`], dir);
  const clientIps = Array.from({ length: clients }, (_, i) => SCALE_IP.client(i));
  const cleanups: Array<() => Promise<unknown>> = [];
  const children = new Map<string, Deno.ChildProcess>();
  const inNs = (ns: string, argv: string[], timeoutMs = 20_000) =>
    run(["ip", "netns", "exec", ns, ...argv], { timeoutMs });
  const director = (d: number) => directors[d - 1]!;
  const keepalivedPid = async (d: number) =>
    Number((await Deno.readTextFile(`${director(d).dir}/keepalived.pid`)).trim());
  const bed: VrrpBed = {
    nodes,
    clients: clientIps,
    clientNs,
    segmentNs,
    directors,
    async startKeepalived(d) {
      const { dir: home, ns } = director(d);
      await Deno.remove(`${home}/vrrp.pid`).catch(() => {});
      const child = new Deno.Command("sh", {
        args: [
          "-c",
          'exec "$@" >>"$0" 2>&1',
          `${home}/keepalived.log`,
          "ip",
          "netns",
          "exec",
          ns,
          ...keepalivedArgv(home, d),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn();
      children.set(`keepalived${d}`, child);
      await waitFor(`keepalived on director ${d}`, async () => {
        const status = await Promise.race([child.status, Promise.resolve(undefined)]);
        if (status) {
          throw new Error(`keepalived exited ${status.code}: ${await bed.keepalivedLog(d)}`);
        }
        return await Deno.stat(`${home}/vrrp.pid`).then(() => true, () => false);
      }, 10_000);
    },
    keepalivedPid,
    keepalivedLog: (d) => Deno.readTextFile(`${director(d).dir}/keepalived.log`).catch(() => ""),
    async held() {
      const result: string[][] = [];
      for (const { ns } of directors) {
        const addresses = await must(["ip", "-n", ns, "-4", "-o", "addr", "show"]);
        result.push(
          [SCALE_IP.vip, VRRP_IP.gateway].filter((a) => addresses.includes(` ${a}/`)),
        );
      }
      return result;
    },
    async sendTo(d) {
      const mac = async (dev: string) =>
        /link\/ether (\S+)/.exec(await must(["ip", "-n", director(d).ns, "link", "show", dev]))
          ?.[1];
      const entries: Array<[string, string, string]> = [
        [clientNs, SCALE_IP.vip, "d0"],
        ...nodes.map((n): [string, string, string] => [n.ns, VRRP_IP.gateway, "d1"]),
      ];
      for (const [ns, address, dev] of entries) {
        const entry = await must(["ip", "-n", ns, "neigh", "show", address]);
        const lladdr = /lladdr (\S+)/.exec(entry)?.[1];
        if (lladdr !== undefined && lladdr !== await mac(dev)) return false;
      }
      return true;
    },
    sshNode: (client) => sshNode(clientNs, client),
    async carried(d, client) {
      const ran = await inNs(director(d).ns, [
        "conntrack",
        "-L",
        "-p",
        "tcp",
        "-s",
        client,
        "-d",
        SCALE_IP.vip,
        "--dport",
        "22",
      ]);
      return ran.stdout.includes(`src=${client} dst=${SCALE_IP.vip}`);
    },
    inNs,
    async describe() {
      const lines = [`held: ${JSON.stringify(await bed.held())}`];
      for (const { d, ns } of directors) {
        const mac = (await run(["ip", "-n", ns, "-br", "link", "show", "d0"])).stdout.trim();
        const log = (await bed.keepalivedLog(d)).trimEnd().split("\n").slice(-12);
        lines.push(`director ${d} ${mac}`, ...log.map((l) => `  ${l}`));
      }
      const neighbour = async (ns: string, address: string) =>
        (await run(["ip", "-n", ns, "neigh", "show", address])).stdout.trim();
      lines.push(`clients: ${await neighbour(clientNs, SCALE_IP.vip)}`);
      for (const node of nodes) {
        lines.push(`node ${node.n}: ${await neighbour(node.ns, VRRP_IP.gateway)}`);
      }
      return lines.join("\n");
    },
    async close() {
      for (const { d, dir: home } of directors) {
        // The main process stops its VRRP process; that one is stopped too if it outlived it.
        await stopOurs(`${home}/keepalived.pid`, home);
        await stopOurs(`${home}/vrrp.pid`, home);
        const child = children.get(`keepalived${d}`);
        children.delete(`keepalived${d}`);
        if (child) await stopChild(child);
      }
      for (const child of children.values()) await stopChild(child);
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await buildNetwork(clientNs, segmentNs, directors, nodes, clientIps, cleanups);
    await startNodes(nodes, children, cleanups);
    const config = localize(await Deno.readTextFile(KEEPALIVED_EXAMPLE));
    for (const { d, ns, dir: home } of directors) {
      await Deno.mkdir(home, { mode: 0o755 });
      await Deno.writeTextFile(`${home}/keepalived.conf`, config);
      children.set(`director${d}`, await startDirector(ns, `${home}/director.log`, nodes));
    }
  } catch (error) {
    await bed.close();
    throw error;
  }
  return bed;
}

/** keepalived on director d: VRRP only, in the foreground, every file in `home`, log to stderr. */
function keepalivedArgv(home: string, d: number): string[] {
  return [
    "keepalived",
    "--use-file",
    `${home}/keepalived.conf`,
    "--config-id",
    `director${d}`,
    "--vrrp",
    "--dont-fork",
    "--log-console",
    "--log-detail",
    "--no-syslog",
    "--pid",
    `${home}/keepalived.pid`,
    "--vrrp_pid",
    `${home}/vrrp.pid`,
    "--checkers_pid",
    `${home}/checkers.pid`,
    "--bfd_pid",
    `${home}/bfd.pid`,
  ];
}

/**
 * The example configuration with the bed's addresses, interfaces and director.sh; throws when the
 * example no longer names what the bed replaces (the test would then run something else).
 */
export function localize(example: string): string {
  const replacements: Array<[RegExp, string]> = [
    [/\beth0\b/g, "d0"],
    [/\beth1\b/g, "d1"],
    [/\b203\.0\.113\.10\b/g, SCALE_IP.vip],
    [/\b10\.1\.0\.11\b/g, SCALE_IP.node(1)],
    [/\b10\.1\.0\.12\b/g, SCALE_IP.node(2)],
    [/\b10\.1\.0\.1\b/g, VRRP_IP.gateway],
    [/\/usr\/local\/sbin\/director\.sh\b/g, `${ROOT}examples/scale-out/director.sh`],
  ];
  let text = example;
  for (const [pattern, value] of replacements) {
    if (!pattern.test(text)) throw new Error(`${KEEPALIVED_EXAMPLE} does not name ${pattern}`);
    text = text.replace(pattern, value);
  }
  return text;
}

async function buildNetwork(
  clientNs: string,
  segmentNs: string,
  directors: readonly VrrpDirector[],
  nodes: readonly ScaleNode[],
  clients: readonly string[],
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  const ipn = await addNamespaces(
    [segmentNs, clientNs, ...directors.map((d) => d.ns), ...nodes.map((n) => n.ns)],
    cleanups,
  );
  for (const bridge of ["out", "in"]) {
    await ipn(segmentNs, "link", "add", bridge, "type", "bridge");
    await ipn(segmentNs, "link", "set", bridge, "up");
  }
  // One veth into a bridge: `port` in the segment, `dev` in `ns`.
  const plug = async (bridge: string, port: string, ns: string, dev: string, address: string) => {
    await addVeth(ipn, [segmentNs, port], [ns, dev]);
    await ipn(segmentNs, "link", "set", port, "master", bridge);
    await ipn(segmentNs, "link", "set", port, "up");
    await ipn(ns, "addr", "add", `${address}/24`, "dev", dev);
    await ipn(ns, "link", "set", dev, "up");
  };
  await plug("out", "oc", clientNs, "c0", clients[0]!);
  for (const client of clients.slice(1)) {
    await ipn(clientNs, "addr", "add", `${client}/24`, "dev", "c0");
  }
  for (const { d, ns, links: [outside, inside] } of directors) {
    await plug("out", outside!, ns, "d0", VRRP_IP.outside(d));
    await plug("in", inside!, ns, "d1", VRRP_IP.inside(d));
    await must(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
  }
  for (const node of nodes) {
    await plug("in", `n${node.n}`, node.ns, "n0", node.ip);
    // Replies go back through the director holding the gateway, which undoes its translation.
    await ipn(node.ns, "route", "add", "default", "via", VRRP_IP.gateway);
  }
}

/** Stops the process in `pidFile` if it is still the keepalived started with files in `home`. */
async function stopOurs(pidFile: string, home: string): Promise<void> {
  const pid = Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
  if (!pid) return;
  const ours = async () =>
    (await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "")).includes(home);
  if (!await ours()) return;
  try {
    Deno.kill(pid, "SIGTERM");
  } catch { /* gone */ }
  await waitFor(`keepalived ${pid} to end`, async () => !await ours(), 5000).catch(() => {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone */ }
  });
}

async function stopChild(child: Deno.ChildProcess): Promise<void> {
  try {
    child.kill("SIGTERM");
  } catch { /* gone */ }
  await child.status;
}
