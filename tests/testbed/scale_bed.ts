/**
 * Several xferproxy nodes behind one address, in network namespaces:
 *
 *   clients ns (198.18.5.10…) ── director ns (198.18.5.1, VIP 198.18.5.100 │ 198.18.6.1, bridge)
 *                                 examples/scale-out/director.sh (nft jhash)  ├── node 1 (198.18.6.2)
 *                                                                             └── node 2 (198.18.6.3)
 *
 * Each node runs OpenSSH sshd (its banner names the node: `VersionAddendum nodeN`) and its own
 * `xferproxy dnat serve`, whose /healthz at <metrics_address> the director polls. Nodes route back
 * through the director, so they see clients' own addresses. Everything is removed by `close()`.
 * @module
 */

import { must, type Ran, run, waitFor } from "./exec.ts";
import { addNamespaces, addVeth } from "./netns.ts";
import { keygen, sshdBaseConfig, startSshd } from "./sshd.ts";
import { BINARY, ROOT } from "./paths.ts";
import { namespaceName, prefixed } from "./prefix.ts";
import { startDnatService } from "./reverse_bed.ts";

/** The bed's fixed addresses. */
export const SCALE_IP = {
  vip: "198.18.5.100",
  directorOutside: "198.18.5.1",
  directorInside: "198.18.6.1",
  /** Node n (from 1) is at 198.18.6.(n + 1). */
  node: (n: number) => `198.18.6.${n + 1}`,
  /** Client address i (from 0). */
  client: (i: number) => `198.18.5.${10 + i}`,
} as const;

/** The port the nodes answer /metrics and /healthz on. */
export const HEALTH_PORT = 9094;

/** One node. */
export interface ScaleNode {
  readonly n: number;
  readonly ns: string;
  readonly ip: string;
  readonly dir: string;
  readonly configPath: string;
}

/** A running bed. */
export interface ScaleBed {
  readonly dir: string;
  readonly nodes: readonly ScaleNode[];
  readonly clients: readonly string[];
  readonly clientNs: string;
  readonly directorNs: string;
  /** Starts director.sh in the director namespace; resolves once it has written its table. */
  startDirector(env?: Record<string, string>): Promise<void>;
  /** What the director logged so far. */
  directorLog(): Promise<string>;
  /** The node (1, 2, …) whose sshd answered an SSH connection from `client` to the VIP. */
  sshNode(client: string): Promise<number | undefined>;
  /** The node a UDP datagram from `client` to VIP:port was sent to (the director's conntrack). */
  udpNode(client: string, port: number): Promise<number | undefined>;
  /** Runs `xferproxy dnat ARGS` as root on node n. */
  dnat(n: number, args: string[]): Promise<Ran>;
  /** GET http://node:9094/path from the director: status code and body. */
  get(n: number, path: string): Promise<{ status: number; body: string }>;
  /** Stops node n's DNAT service with `signal`. */
  stopService(n: number, signal?: Deno.Signal): Promise<void>;
  /** Starts node n's DNAT service again; resolves once its heartbeat is written. */
  startService(n: number): Promise<void>;
  /** Runs a program in a namespace. */
  inNs(ns: string, argv: string[], timeoutMs?: number): Promise<Ran>;
  close(): Promise<void>;
}

const DIRECTOR = `${ROOT}examples/scale-out/director.sh`;
const GROUP = prefixed("scale");

/** Builds the bed with `nodes` nodes and `clients` client addresses. Needs root. */
export async function createScaleBed(nodes = 2, clients = 24): Promise<ScaleBed> {
  const id = namespaceName("");
  const clientNs = `${id}c`;
  const directorNs = `${id}d`;
  const nodeNs = Array.from({ length: nodes }, (_, i) => `${id}n${i + 1}`);
  const dir = await Deno.makeTempDir({ prefix: "xferproxy-scale-" });
  await Deno.chmod(dir, 0o755);
  const cleanups: Array<() => Promise<unknown>> = [];
  const children = new Map<string, Deno.ChildProcess>();
  const clientIps = Array.from({ length: clients }, (_, i) => SCALE_IP.client(i));
  const nodeList = scaleNodes(nodeNs, dir);
  const inNs = (ns: string, argv: string[], timeoutMs = 20_000) =>
    run(["ip", "netns", "exec", ns, ...argv], { timeoutMs });
  const stop = async (key: string, signal: Deno.Signal = "SIGTERM") => {
    const child = children.get(key);
    if (!child) return;
    children.delete(key);
    try {
      child.kill(signal);
    } catch { /* gone */ }
    await child.status;
  };
  const bed: ScaleBed = {
    dir,
    nodes: nodeList,
    clients: clientIps,
    clientNs,
    directorNs,
    async startDirector(env = {}) {
      children.set(
        "director",
        await startDirector(directorNs, `${dir}/director.log`, nodeList, env),
      );
    },
    directorLog: () => Deno.readTextFile(`${dir}/director.log`).catch(() => ""),
    sshNode: (client) => sshNode(clientNs, client),
    async udpNode(client, port) {
      // curl's TFTP sends one UDP read request from the address given: a datagram as a FASP
      // client's first would be, from that client.
      await inNs(clientNs, [
        "curl",
        "-s",
        "--interface",
        client,
        "-m",
        "1",
        `tftp://${SCALE_IP.vip}:${port}/probe`,
      ]);
      const tracked = await inNs(directorNs, [
        "conntrack",
        "-L",
        "-p",
        "udp",
        "-s",
        client,
        "-d",
        SCALE_IP.vip,
        "--dport",
        String(port),
      ]);
      const m = tracked.stdout.match(/src=198\.18\.6\.(\d+) dst=/);
      return m ? Number(m[1]) - 1 : undefined;
    },
    dnat: (n, args) =>
      inNs(nodeList[n - 1]!.ns, [BINARY, "dnat", ...args, "--config", nodeList[n - 1]!.configPath]),
    async get(n, path) {
      const ran = await inNs(directorNs, [
        "curl",
        "-s",
        "-m",
        "2",
        "-w",
        "\n%{http_code}",
        `http://${SCALE_IP.node(n)}:${HEALTH_PORT}${path}`,
      ]);
      const cut = ran.stdout.lastIndexOf("\n");
      return { status: Number(ran.stdout.slice(cut + 1)), body: ran.stdout.slice(0, cut) };
    },
    stopService: (n, signal = "SIGTERM") => stop(`dnat${n}`, signal),
    async startService(n) {
      const node = nodeList[n - 1]!;
      if (!children.has(`dnat${n}`)) {
        children.set(`dnat${n}`, await startDnatService(node.ns, node.configPath, node.dir));
      }
    },
    inNs,
    async close() {
      for (const key of [...children.keys()]) await stop(key).catch(() => {});
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await buildNetwork(clientNs, directorNs, nodeList, clientIps, cleanups);
    await startNodes(nodeList, children, cleanups);
  } catch (error) {
    await bed.close();
    throw error;
  }
  return bed;
}

/** The nodes of a bed in `dir`, one per namespace name, numbered from 1. */
export function scaleNodes(namespaces: readonly string[], dir: string): ScaleNode[] {
  return namespaces.map((ns, i) => ({
    n: i + 1,
    ns,
    ip: SCALE_IP.node(i + 1),
    dir: `${dir}/node${i + 1}`,
    configPath: `${dir}/node${i + 1}/etc/aspera.conf`,
  }));
}

/**
 * Writes and starts every node (its sshd, its DNAT service), in namespaces that exist already;
 * each process goes into `children` under `sshdN` and `dnatN`, the bed's group into `cleanups`.
 */
export async function startNodes(
  nodes: readonly ScaleNode[],
  children: Map<string, Deno.ChildProcess>,
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  await run(["groupdel", GROUP]);
  await must(["groupadd", GROUP]);
  cleanups.push(() => run(["groupdel", GROUP]));
  for (const node of nodes) {
    await writeNode(node);
    children.set(
      `sshd${node.n}`,
      await startSshd(node.ns, `${node.dir}/sshd_config`, { waitFor: [node.ip] }),
    );
    children.set(`dnat${node.n}`, await startDnatService(node.ns, node.configPath, node.dir));
  }
}

/**
 * Starts director.sh (VIP to `nodes`) in namespace `ns`, its output appended to `log`; resolves
 * once it has written its first table.
 */
export async function startDirector(
  ns: string,
  log: string,
  nodes: readonly ScaleNode[],
  env: Record<string, string> = {},
): Promise<Deno.ChildProcess> {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$@" >>"$0" 2>&1',
      log,
      "ip",
      "netns",
      "exec",
      ns,
      "env",
      `INTERVAL=1`,
      `HEALTH_PORT=${HEALTH_PORT}`,
      ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
      "bash",
      DIRECTOR,
      SCALE_IP.vip,
      ...nodes.map((n) => n.ip),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  const read = () => Deno.readTextFile(log).catch(() => "");
  try {
    await waitFor("the director's first table", async () => {
      const status = await Promise.race([child.status, Promise.resolve(undefined)]);
      if (status) throw new Error(`director.sh exited ${status.code}: ${await read()}`);
      return (await read()).includes(`${SCALE_IP.vip} -> `);
    }, 15_000);
  } catch (error) {
    child.kill("SIGTERM");
    await child.status;
    throw error;
  }
  return child;
}

/** The node (1, 2, …) whose sshd answered an SSH connection from `client` (in `clientNs`) to the VIP. */
export async function sshNode(clientNs: string, client: string): Promise<number | undefined> {
  const ran = await run([
    "ip",
    "netns",
    "exec",
    clientNs,
    "ssh",
    "-v",
    "-b",
    client,
    "-F",
    "/dev/null",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "ConnectTimeout=3",
    "-o",
    "PreferredAuthentications=publickey",
    "-o",
    "IdentityFile=/dev/null",
    `${prefixed("nobody")}@${SCALE_IP.vip}`,
    "true",
  ], { timeoutMs: 20_000 });
  const m = ran.stderr.match(/remote software version .* node(\d+)/);
  return m ? Number(m[1]) : undefined;
}

async function buildNetwork(
  clientNs: string,
  directorNs: string,
  nodes: readonly ScaleNode[],
  clients: readonly string[],
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  const ipn = await addNamespaces([clientNs, directorNs, ...nodes.map((n) => n.ns)], cleanups);
  await addVeth(ipn, [clientNs, "c0"], [directorNs, "d0"]);
  await ipn(directorNs, "link", "add", "br0", "type", "bridge");
  for (const node of nodes) {
    await addVeth(ipn, [node.ns, "n0"], [directorNs, `dn${node.n}`]);
    await ipn(directorNs, "link", "set", `dn${node.n}`, "master", "br0");
    await ipn(directorNs, "link", "set", `dn${node.n}`, "up");
    await ipn(node.ns, "addr", "add", `${node.ip}/24`, "dev", "n0");
    await ipn(node.ns, "link", "set", "n0", "up");
    // Replies go back through the director, which undoes its translation.
    await ipn(node.ns, "route", "add", "default", "via", SCALE_IP.directorInside);
  }
  for (const client of clients) await ipn(clientNs, "addr", "add", `${client}/24`, "dev", "c0");
  await ipn(directorNs, "addr", "add", `${SCALE_IP.directorOutside}/24`, "dev", "d0");
  await ipn(directorNs, "addr", "add", `${SCALE_IP.vip}/24`, "dev", "d0");
  await ipn(directorNs, "addr", "add", `${SCALE_IP.directorInside}/24`, "dev", "br0");
  for (const [ns, dev] of [[clientNs, "c0"], [directorNs, "d0"], [directorNs, "br0"]]) {
    await ipn(ns as string, "link", "set", dev as string, "up");
  }
  await ipn(clientNs, "route", "add", "default", "via", SCALE_IP.directorOutside);
  await must(["ip", "netns", "exec", directorNs, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

/** A node's sshd (its banner names it) and xferproxy config (health on its own address). */
async function writeNode(node: ScaleNode): Promise<void> {
  for (const sub of ["etc", "state", "log", "run"]) {
    await Deno.mkdir(`${node.dir}/${sub}`, { recursive: true, mode: 0o755 });
  }
  // The socket's directory, as the packages' tmpfiles.d file makes /run/xferproxy.
  await Deno.chmod(`${node.dir}/run`, 0o750);
  await must(["chown", `root:${GROUP}`, `${node.dir}/run`]);
  await keygen(`${node.dir}/host_key`, `node${node.n}`);
  await Deno.writeTextFile(
    `${node.dir}/sshd_config`,
    sshdBaseConfig({
      listen: [node.ip],
      hostKey: `${node.dir}/host_key`,
      pidFile: `${node.dir}/sshd.pid`,
      authorizedKeys: `${node.dir}/authorized_keys/%u`,
    }) + `\nVersionAddendum node${node.n}\n`,
  );
  await Deno.writeTextFile(
    node.configPath,
    `<CONF version="2">
  <server>
    <state_directory>${node.dir}/state</state_directory>
    <service_socket>${node.dir}/run/dnat.sock</service_socket>
    <metrics_address>${node.ip}:${HEALTH_PORT}</metrics_address>
    <rproxy>
      <enabled>true</enabled>
      <log_directory>${node.dir}/log</log_directory>
      <proxy_group>${GROUP}</proxy_group>
      <rules>
        <rule host_ip="${SCALE_IP.vip}"><hosts><host>198.18.7.2</host></hosts><keyfile>${node.dir}/etc/key</keyfile></rule>
      </rules>
    </rproxy>
  </server>
</CONF>
`,
  );
}
