/**
 * A reverse-proxy testbed in network namespaces, built from real parts:
 *
 *   client ns (198.18.1.2) ── proxy ns (198.18.1.1, .17 │ 198.18.2.1) ──┬── server A (198.18.2.2)
 *                             OpenSSH sshd, ForceCommand dist/xferproxy  └── server B (198.18.2.3)
 *
 * Users <prefix>_alice and <prefix>_bob log in to the proxy with their own
 * keys; the squash account <prefix>_xfer exists only upstream (prefix.ts). The proxy's sshd runs in a
 * private mount namespace whose /etc is overlaid with the bed's
 * etc/xferproxy, so sessions and their sudo DNAT calls find the bed's config
 * at /etc/xferproxy/aspera.conf, as on a real proxy, and the host's /etc is
 * untouched. Each bed runs its own DNAT service. Everything lives in one
 * temporary directory and is removed by `close()`, also after failures.
 * Addresses come only from 198.18.0.0/15 and exist only in these namespaces.
 * @module
 */

import { inPrivateMounts, must, type Ran, run, waitFor } from "./exec.ts";
import { addNamespaces, addVeth } from "./netns.ts";
import {
  addTestUser,
  keygen,
  publicKey,
  sshClientOptions,
  sshdBaseConfig,
  startSshd,
} from "./sshd.ts";
import { dnatArgv } from "../../src/dnat/contract.ts";
import { parseIp } from "../../src/net/ip.ts";
import { BINARY, ROOT, underUnit } from "./paths.ts";
import { namespaceName, PREFIX, prefixed } from "./prefix.ts";

/** Addresses of the testbed hosts. */
export const IP = {
  client: "198.18.1.2",
  proxy: "198.18.1.1",
  /** A second proxy address, for the individual-account, load-balanced rule. */
  proxyAlt: "198.18.1.17",
  proxyInside: "198.18.2.1",
  a: "198.18.2.2",
  b: "198.18.2.3",
} as const;

/** Proxy users (they log in to the proxy) and the upstream-only squash account. */
/** Test accounts; carol's name is one an AD/LDAP-joined host has (capitals, a dot, a domain). */
export const USERS = {
  alice: prefixed("alice"),
  bob: prefixed("bob"),
  carol: `${PREFIX[0]!.toUpperCase()}${PREFIX.slice(1)}.Carol@corp`,
  xfer: prefixed("xfer"),
} as const;
/** The proxy users' group (sshd's Match Group, the sudoers line, the DNAT socket's group). */
export const GROUP = prefixed("proxy");

/** The namespaces' names. */
export interface Namespaces {
  readonly client: string;
  readonly proxy: string;
  readonly a: string;
  readonly b: string;
}

/** Options for the testbed. */
export interface TestbedOptions {
  /** Extra XML inserted into `<rproxy>` of the default config. */
  readonly rproxyExtra?: string;
  /** Replaces the default `<rules>` content. */
  readonly rules?: string;
  /**
   * The default rules' `<connect_timeout>` in seconds: 3, so that the tests of a server that is
   * down fail over quickly; the benchmarks use the product's default, 10.
   */
  readonly connectTimeout?: number;
  /** Extra XML inserted into `<server>` (e.g. `<dnat_backend>nftables</dnat_backend>`). */
  readonly serverExtra?: string;
  /** The proxy sshd's AcceptEnv patterns for proxy users; default XFERPROXY_HOST, as docs advise. */
  readonly acceptEnv?: string;
  /**
   * Sessions run a copy of dist/xferproxy outside the checkout, which the proxy sshd's mount
   * namespace hides: the shipped file alone must do.
   */
  readonly shippedCopy?: boolean;
  /** Login shell of the squash account on the internal servers (default /bin/sh). */
  readonly squashShell?: string;
}

/** A running testbed. */
export interface Testbed {
  readonly dir: string;
  readonly ns: Namespaces;
  readonly configPath: string;
  readonly knownHostsPath: string;
  readonly logPath: string;
  /** The bed's sudoers drop-in (the sessions' fallback while the DNAT service is down). */
  readonly sudoersPath: string;
  readonly dataDir: string;
  /** Writes a new aspera.conf for the proxy. */
  writeConfig(xml: string): Promise<void>;
  /** The default config text for these options. */
  defaultConfig(options?: TestbedOptions): string;
  /** argv prefix to run OpenSSH `ssh` in the client namespace as `user` with their key. */
  sshArgs(user: string): string[];
  /** argv prefix for `scp` or `sftp` in the client namespace as `user`. */
  clientArgs(tool: "scp" | "sftp", user: string): string[];
  /** argv of a legacy-protocol scp from the client straight to server A as the squash account (no proxy). */
  directScpArgs(src: string, remotePath: string): Promise<string[]>;
  /** argv prefix of ssh from the client straight to server A as the squash account (no proxy). */
  directSshArgs(): Promise<string[]>;
  /** The `-e` command for rsync: ssh with the same options as `user`. */
  rsyncShell(user: string): string;
  /** argv prefix for rsync in the client namespace as `user`, over `rsyncShell(user)`. */
  rsyncArgs(user: string): string[];
  /** Runs `ssh user@host command` from the client namespace. */
  ssh(
    user: string,
    host: string,
    command: string[],
    options?: { stdin?: string | Uint8Array; extra?: string[]; timeoutMs?: number },
  ): Promise<Ran>;
  /**
   * Runs a program where the proxy's sessions run: the proxy namespace and its sshd's mount
   * namespace (so /etc/xferproxy is the bed's), as root or as `user` with its groups.
   */
  inProxy(
    argv: string[],
    options?: { user?: string; env?: Record<string, string>; timeoutMs?: number },
  ): Promise<Ran>;
  /** Starts a program as in `inProxy` and leaves it running. */
  spawnInProxy(
    argv: string[],
    options?: { user?: string; env?: Record<string, string> },
  ): Deno.ChildProcess;
  /** Runs `xferproxy dnat ARGS --config <the bed's config>` as root in the proxy namespace. */
  dnat(args: string[]): Promise<Ran>;
  /** Runs a program in a namespace. */
  inNs(
    ns: string,
    argv: string[],
    options?: { stdin?: string | Uint8Array; timeoutMs?: number },
  ): Promise<Ran>;
  /** The proxy log so far: the sessions' shared file, then root's (the DNAT service's, sudo's). */
  log(): Promise<string>;
  /** Stops or starts server A's or B's sshd. */
  stopServer(which: "a" | "b"): Promise<void>;
  startServer(which: "a" | "b"): Promise<void>;
  /**
   * Stops (SIGTERM, or the signal given) or starts the bed's DNAT service (`xferproxy dnat serve`,
   * root, in the proxy namespace).
   */
  stopDnatService(signal?: Deno.Signal): Promise<void>;
  startDnatService(): Promise<void>;
  /** Host public key line ("type base64") of a server. */
  hostKey(which: "a" | "b"): Promise<string>;
  close(): Promise<void>;
}

/** What proxy sessions run: dist/xferproxy, or its copy outside the checkout. */
function sessionBinaryOf(dir: string, options: TestbedOptions): string {
  return options.shippedCopy ? `${dir}/shipped/xferproxy` : BINARY;
}

/** Builds the testbed. Needs root, iproute2 and OpenSSH. */
export async function createTestbed(options: TestbedOptions = {}): Promise<Testbed> {
  const id = namespaceName("");
  const ns: Namespaces = { client: `${id}c`, proxy: `${id}p`, a: `${id}a`, b: `${id}b` };
  const dir = await Deno.makeTempDir({ prefix: "xferproxy-bed-" });
  const sessionBinary = sessionBinaryOf(dir, options);
  const servers = new Map<string, Deno.ChildProcess>();
  const cleanups: Array<() => Promise<unknown>> = [];
  // A proxy user's ssh options on the client: their key, the proxy's known host key.
  const client = (user: string) =>
    sshClientOptions(`${dir}/client/known_hosts`, `${dir}/client/${user}`);
  // The squash account's, straight to server A: ssh refuses the group-readable squash key, so a
  // private copy.
  const directOptions = async () => {
    const key = `${dir}/direct_key`;
    await Deno.copyFile(`${dir}/proxy/keys/squash`, key);
    await Deno.chmod(key, 0o600);
    return sshClientOptions(`${dir}/proxy/known_hosts`, key);
  };
  const bed: Testbed = {
    dir,
    ns,
    configPath: `${dir}/etc/xferproxy/aspera.conf`,
    knownHostsPath: `${dir}/proxy/known_hosts`,
    logPath: `${dir}/log/xferproxy.log`,
    sudoersPath: sudoersPathOf(id),
    dataDir: `${dir}/data`,
    writeConfig: (xml) =>
      Deno.writeTextFile(`${dir}/etc/xferproxy/aspera.conf`, xml, { mode: 0o644 }),
    defaultConfig: (o = options) => defaultConfig(dir, o),
    sshArgs: (user) => ["ip", "netns", "exec", ns.client, "ssh", ...client(user), "-l", user],
    clientArgs: (tool, user) => [
      "ip",
      "netns",
      "exec",
      ns.client,
      tool,
      ...client(user),
      "-o",
      `User=${user}`,
    ],
    directScpArgs: async (src, remotePath) => [
      "ip",
      "netns",
      "exec",
      ns.client,
      "scp",
      "-O",
      ...await directOptions(),
      src,
      `${USERS.xfer}@${IP.a}:${remotePath}`,
    ],
    directSshArgs: async () => [
      "ip",
      "netns",
      "exec",
      ns.client,
      "ssh",
      ...await directOptions(),
      "-l",
      USERS.xfer,
      IP.a,
    ],
    rsyncShell: (user) => ["ssh", ...client(user), "-l", user].join(" "),
    rsyncArgs: (user) => ["ip", "netns", "exec", ns.client, "rsync", "-e", bed.rsyncShell(user)],
    ssh: (user, host, command, o = {}) =>
      run([...bed.sshArgs(user), ...(o.extra ?? []), host, ...command], {
        ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
        timeoutMs: o.timeoutMs ?? 60_000,
      }),
    inProxy: (argv, o = {}) =>
      run(proxyArgv(servers.get("proxy"), argv, o), { timeoutMs: o.timeoutMs ?? 60_000 }),
    spawnInProxy: (argv, o = {}) => {
      const [program, ...args] = proxyArgv(servers.get("proxy"), argv, o);
      return new Deno.Command(program as string, {
        args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    },
    dnat: (args) =>
      run(["ip", "netns", "exec", ns.proxy, BINARY, "dnat", ...args, "--config", bed.configPath]),
    inNs: (name, argv, o = {}) =>
      run(["ip", "netns", "exec", name, ...argv], {
        ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
        timeoutMs: o.timeoutMs ?? 60_000,
      }),
    log: async () => {
      // One log as the single file was: both files' lines in time order (each starts with its
      // ISO timestamp; the sort is stable, so a file's own order holds).
      const lines: string[] = [];
      for (const file of ["xferproxy.log", "root/xferproxy.log"]) {
        const text = await Deno.readTextFile(`${dir}/log/${file}`).catch(() => "");
        lines.push(...text.split("\n").filter((line) => line !== ""));
      }
      const stamp = (line: string) => line.slice(0, line.indexOf(" "));
      lines.sort((a, b) => stamp(a) < stamp(b) ? -1 : stamp(a) > stamp(b) ? 1 : 0);
      return lines.map((line) => `${line}\n`).join("");
    },
    stopServer: async (which) => {
      const child = servers.get(which);
      if (!child) return;
      servers.delete(which);
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
    startServer: async (which) => {
      const name = which === "a" ? ns.a : ns.b;
      const ip = which === "a" ? IP.a : IP.b;
      servers.set(
        which,
        await startSshd(name, `${dir}/server-${which}/sshd_config`, { waitFor: [ip] }),
      );
    },
    stopDnatService: async (signal = "SIGTERM") => {
      const child = servers.get("dnat");
      if (!child) return;
      servers.delete("dnat");
      await stopChild(child, signal);
    },
    startDnatService: async () => {
      if (servers.has("dnat")) return;
      servers.set(
        "dnat",
        await startDnatService(ns.proxy, `${dir}/etc/xferproxy/aspera.conf`, dir),
      );
    },
    hostKey: async (which) => {
      const pub = await Deno.readTextFile(`${dir}/server-${which}/host_key.pub`);
      return pub.trim().split(" ").slice(0, 2).join(" ");
    },
    close: async () => {
      await bed.stopDnatService().catch(() => {});
      for (const which of ["a", "b"] as const) await bed.stopServer(which).catch(() => {});
      const proxySshd = servers.get("proxy");
      if (proxySshd) await stopChild(proxySshd);
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    await checkReadableByOthers();
    await buildNetwork(ns, cleanups);
    await createUsers(dir, cleanups, options.squashShell);
    await writeFiles(bed, options);
    await installSudoers(id, sessionBinary, cleanups);
    servers.set(
      "proxy",
      await startSshd(ns.proxy, `${dir}/proxy/sshd_config`, {
        waitFor: [IP.proxy, IP.proxyAlt],
        wrap: overlayWrap(
          `${dir}/etc`,
          options.shippedCopy ? ROOT.replace(/\/$/, "") : undefined,
        ),
      }),
    );
    await bed.startDnatService();
    await bed.startServer("a");
    await bed.startServer("b");
  } catch (error) {
    await bed.close();
    throw error;
  }
  return bed;
}

/** argv entering the proxy sshd's mount and network namespaces, as `user` with a clean environment. */
function proxyArgv(
  sshd: Deno.ChildProcess | undefined,
  argv: string[],
  options: { user?: string; env?: Record<string, string> },
): string[] {
  if (!sshd) throw new Error("The proxy's sshd is not running");
  const env = Object.entries({ PATH: "/usr/sbin:/usr/bin:/sbin:/bin", ...options.env }).map((
    [k, v],
  ) => `${k}=${v}`);
  const as = options.user
    ? ["setpriv", `--reuid=${options.user}`, `--regid=${options.user}`, "--init-groups"]
    : [];
  return [
    "nsenter",
    `--target=${sshd.pid}`,
    "--mount",
    "--net",
    "--",
    ...as,
    "env",
    "-i",
    ...env,
    ...argv,
  ];
}

async function stopChild(child: Deno.ChildProcess, signal: Deno.Signal = "SIGTERM"): Promise<void> {
  try {
    child.kill(signal);
  } catch { /* gone */ }
  await child.status;
}

/** sshd runs the binary as the proxy users: the checkout must be readable by them. */
async function checkReadableByOthers(): Promise<void> {
  const probe = await run([
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
    "test",
    "-r",
    `${ROOT}main.ts`,
  ]);
  if (probe.code !== 0) {
    throw new Error(
      `The checkout ${ROOT} is not readable by other users; sshd runs dist/xferproxy as the proxy users (chmod o+rx its parent directories)`,
    );
  }
}

async function buildNetwork(
  ns: Namespaces,
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  const ipn = await addNamespaces(Object.values(ns), cleanups);
  await addVeth(ipn, [ns.client, "c0"], [ns.proxy, "p0"]);
  await ipn(ns.proxy, "link", "add", "br0", "type", "bridge");
  await addVeth(ipn, [ns.a, "a0"], [ns.proxy, "pa"]);
  await addVeth(ipn, [ns.b, "b0"], [ns.proxy, "pb"]);
  await ipn(ns.proxy, "link", "set", "pa", "master", "br0");
  await ipn(ns.proxy, "link", "set", "pb", "master", "br0");
  await ipn(ns.client, "addr", "add", `${IP.client}/24`, "dev", "c0");
  await ipn(ns.proxy, "addr", "add", `${IP.proxy}/24`, "dev", "p0");
  await ipn(ns.proxy, "addr", "add", `${IP.proxyAlt}/24`, "dev", "p0");
  await ipn(ns.proxy, "addr", "add", `${IP.proxyInside}/24`, "dev", "br0");
  await ipn(ns.a, "addr", "add", `${IP.a}/24`, "dev", "a0");
  await ipn(ns.b, "addr", "add", `${IP.b}/24`, "dev", "b0");
  for (
    const [name, dev] of [
      [ns.client, "c0"],
      [ns.proxy, "p0"],
      [ns.proxy, "br0"],
      [ns.proxy, "pa"],
      [ns.proxy, "pb"],
      [ns.a, "a0"],
      [ns.b, "b0"],
    ]
  ) {
    await ipn(name as string, "link", "set", dev as string, "up");
  }
  await ipn(ns.client, "route", "add", "default", "via", IP.proxy);
  await ipn(ns.a, "route", "add", "default", "via", IP.proxyInside);
  await ipn(ns.b, "route", "add", "default", "via", IP.proxyInside);
  await must(["ip", "netns", "exec", ns.proxy, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
}

async function createUsers(
  dir: string,
  cleanups: Array<() => Promise<unknown>>,
  squashShell: string | undefined,
): Promise<void> {
  await run(["groupdel", GROUP]);
  await must(["groupadd", GROUP]);
  cleanups.push(() => run(["groupdel", GROUP]));
  await Deno.mkdir(`${dir}/home`, { recursive: true });
  for (const [role, user] of Object.entries(USERS)) {
    await addTestUser(
      user,
      `${dir}/home/${user}`,
      cleanups,
      role === "xfer" ? (squashShell ? { shell: squashShell } : {}) : { groups: [GROUP] },
    );
  }
}

/** `dnat add` arguments for a session of the first rule (client → proxy's first address → server A). */
export function dnatAddArgs(owner: number): string[] {
  return dnatArgv({
    action: "add",
    request: {
      rule: 1,
      host: 0,
      server: { ip: parseIp(IP.a)!, port: 22 },
      named: { owner, client: parseIp(IP.client)!, proxy: parseIp(IP.proxy)! },
    },
  }).slice(1);
}

/** The sudoers line docs/dnat.md gives administrators, for the test group. */
export function sudoersLine(binary = BINARY): string {
  return `%${GROUP} ALL=(root) NOPASSWD: ${binary} dnat *`;
}

function sudoersPathOf(id: string): string {
  return `/etc/sudoers.d/xferproxy-test-${id}`;
}

async function installSudoers(
  id: string,
  binary: string,
  cleanups: Array<() => Promise<unknown>>,
): Promise<void> {
  const path = sudoersPathOf(id);
  await Deno.writeTextFile(path, sudoersLine(binary) + "\n", { mode: 0o440 });
  cleanups.push(() => Deno.remove(path));
  await must(["visudo", "-cf", path]);
}

async function writeFiles(bed: Testbed, options: TestbedOptions): Promise<void> {
  const dir = bed.dir;
  await Deno.chmod(dir, 0o755);
  for (
    const sub of [
      "client",
      "etc/xferproxy",
      "proxy/keys",
      "proxy/authorized_keys",
      "server/authorized_keys",
      "server-a",
      "server-b",
      "log",
      "state",
      "data",
    ]
  ) {
    await Deno.mkdir(`${dir}/${sub}`, { recursive: true, mode: 0o755 });
  }
  // Shared by every proxy user through the group (setgid keeps it): the log directory and the
  // balancer state. The state directory itself is root's: the DNAT registry lives in it.
  await Deno.mkdir(`${dir}/state/balancer`, { mode: 0o755 });
  for (const sub of ["state/balancer", "log"]) {
    await must(["chown", `root:${GROUP}`, `${dir}/${sub}`]);
    await Deno.chmod(`${dir}/${sub}`, 0o2770);
  }
  await Deno.chmod(`${dir}/data`, 0o1777);
  // The DNAT service's socket directory, as the packages' tmpfiles.d file makes /run/xferproxy:
  // the service runs under its unit's capabilities, which cannot change a group.
  await Deno.mkdir(`${dir}/run`, { mode: 0o750 });
  await must(["chown", `root:${GROUP}`, `${dir}/run`]);

  const serverKeys: string[] = [];
  for (const user of [USERS.alice, USERS.bob, USERS.carol]) {
    // The client's key for the proxy, and the proxy user's own key for the internal servers.
    await keygen(`${dir}/client/${user}`, `${user}@client`);
    await Deno.copyFile(`${dir}/client/${user}.pub`, `${dir}/proxy/authorized_keys/${user}`);
    const own = `${dir}/home/${user}/.ssh/id_ed25519`;
    await keygen(own, `${user}@proxy`);
    await must(["chown", `${user}:`, own, `${own}.pub`]);
    serverKeys.push(`${user}:${await Deno.readTextFile(`${own}.pub`)}`);
  }
  // The squash key: readable by the proxy users' group only.
  await keygen(`${dir}/proxy/keys/squash`, "squash@proxy");
  await must(["chown", `root:${GROUP}`, `${dir}/proxy/keys/squash`]);
  await Deno.chmod(`${dir}/proxy/keys/squash`, 0o640);
  serverKeys.push(`${USERS.xfer}:${await Deno.readTextFile(`${dir}/proxy/keys/squash.pub`)}`);
  for (const entry of serverKeys) {
    const [user, key] = [entry.slice(0, entry.indexOf(":")), entry.slice(entry.indexOf(":") + 1)];
    await Deno.writeTextFile(`${dir}/server/authorized_keys/${user}`, key, { mode: 0o644 });
  }

  await keygen(`${dir}/proxy/host_key`, "proxy");
  const proxyHostKey = await publicKey(`${dir}/proxy/host_key.pub`);
  await Deno.writeTextFile(
    `${dir}/client/known_hosts`,
    `${IP.proxy},${IP.proxyAlt} ${proxyHostKey}\n`,
  );
  const knownHosts: string[] = [];
  for (const which of ["a", "b"] as const) {
    await keygen(`${dir}/server-${which}/host_key`, `server-${which}`);
    await Deno.writeTextFile(`${dir}/server-${which}/sshd_config`, serverSshdConfig(dir, which));
    knownHosts.push(`${which === "a" ? IP.a : IP.b} ${await bed.hostKey(which)}`);
  }
  await Deno.writeTextFile(bed.knownHostsPath, knownHosts.join("\n") + "\n", { mode: 0o644 });
  await Deno.writeTextFile(
    `${dir}/proxy/sshd_config`,
    proxySshdConfig(dir, options.acceptEnv ?? "XFERPROXY_HOST", sessionBinaryOf(dir, options)),
  );
  if (options.shippedCopy) {
    await Deno.mkdir(`${dir}/shipped`, { mode: 0o755 });
    await Deno.copyFile(BINARY, sessionBinaryOf(dir, options));
    await Deno.chmod(sessionBinaryOf(dir, options), 0o755);
  }
  await bed.writeConfig(defaultConfig(dir, options));
}

function proxySshdConfig(dir: string, acceptEnv: string, binary: string): string {
  return [
    sshdBaseConfig({
      listen: [IP.proxy, IP.proxyAlt],
      hostKey: `${dir}/proxy/host_key`,
      pidFile: `${dir}/proxy/sshd.pid`,
      authorizedKeys: `${dir}/proxy/authorized_keys/%u`,
    }),
    // The block docs/reverse.md gives administrators.
    `Match Group ${GROUP}`,
    `  ForceCommand ${binary} reverse`,
    "  DisableForwarding yes",
    `  AcceptEnv ${acceptEnv}`,
    "  PermitTTY yes",
    "",
  ].join("\n");
}

function serverSshdConfig(dir: string, which: "a" | "b"): string {
  return sshdBaseConfig({
    listen: [which === "a" ? IP.a : IP.b],
    hostKey: `${dir}/server-${which}/host_key`,
    pidFile: `${dir}/server-${which}/sshd.pid`,
    authorizedKeys: `${dir}/server/authorized_keys/%u`,
  }) + "\n";
}

/** The testbed's default aspera.conf: a squash rule on .1 and a balanced individual rule on .17. */
function defaultConfig(dir: string, options: TestbedOptions): string {
  const testCommands = [
    "ascp",
    "scp",
    "rsync --server",
    "subsystem:sftp",
    "ls",
    "cat",
    "printenv",
    "sha256sum",
    "tty",
    "sleep",
    "true",
    "false",
    "head",
    "kill",
    `python3 ${ROOT}tests/udp_echo.py`,
    `python3 ${ROOT}tests/udp_sink.py`,
  ]
    .map((c) => `<command>${c}</command>`).join("");
  // The UDP endpoints stand in for ascp: their sessions get UDP forwarding.
  const udpCommands = [
    "ascp",
    "ascp4",
    "async",
    `python3 ${ROOT}tests/udp_echo.py`,
    `python3 ${ROOT}tests/udp_sink.py`,
  ].map((c) => `<command>${c}</command>`).join("");
  const rules = options.rules ?? `
        <rule host_ip="${IP.proxy}">
          <host>${IP.a}:22</host>
          <squash_user>${USERS.xfer}</squash_user>
          <keyfile>${dir}/proxy/keys/squash</keyfile>
          <connect_timeout>${options.connectTimeout ?? 3}</connect_timeout>
        </rule>
        <rule host_ip="${IP.proxyAlt}/32">
          <balancing>round_robin</balancing>
          <hosts>
            <host>${IP.a}</host>
            <host>${IP.b}</host>
          </hosts>
          <keyfile>${dir}/home/$(user)/.ssh/id_ed25519</keyfile>
          <connect_timeout>${options.connectTimeout ?? 3}</connect_timeout>
        </rule>`;
  return `<CONF version="2">
  <server>
    <state_directory>${dir}/state</state_directory>
    <service_socket>${dir}/run/dnat.sock</service_socket>
    ${options.serverExtra ?? ""}
    <rproxy>
      <enabled>true</enabled>
      <log_level>1</log_level>
      <log_directory>${dir}/log</log_directory>
      <known_hosts>${dir}/proxy/known_hosts</known_hosts>
      <proxy_group>${GROUP}</proxy_group>
      <allowed_commands>${testCommands}</allowed_commands>
      <udp_commands>${udpCommands}</udp_commands>
      ${options.rproxyExtra ?? ""}
      <rules>${rules}
      </rules>
    </rproxy>
  </server>
</CONF>
`;
}

/**
 * The proxy's sshd in a private mount namespace whose /etc shows the overlay's files over
 * the host's (read-only), and whose /etc/xferproxy is the overlay's own directory; `hide`
 * is covered by an empty tmpfs.
 */
function overlayWrap(etcOverlay: string, hide?: string): string[] {
  return inPrivateMounts(
    // Overlayfs may not see later changes to its lower layer (a renamed or replaced
    // aspera.conf): /etc/xferproxy is bound on top, so tests see exactly what they wrote.
    `mount -t overlay xferproxy-bed -o lowerdir=${etcOverlay}:/etc /etc && ` +
      `mount --bind ${etcOverlay}/xferproxy /etc/xferproxy && ` +
      (hide ? `mount -t tmpfs xferproxy-hidden ${hide} && ` : "") + `exec "$@"`,
  );
}

/** Starts `xferproxy dnat serve` as root in the proxy namespace; waits for its heartbeat. */
export async function startDnatService(
  ns: string,
  configPath: string,
  dir: string,
): Promise<Deno.ChildProcess> {
  const heartbeat = `${dir}/state/dnat/service.json`;
  await Deno.remove(heartbeat).catch(() => {});
  // Straight into the file: a pipe this process stopped draining would stall the service's
  // writes (a thousand log lines fill one).
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      'exec "$@" >>"$0" 2>&1',
      `${dir}/log/dnat-service.out`,
      "ip",
      "netns",
      "exec",
      ns,
      ...underUnit("xferproxy-dnat", [BINARY, "dnat", "serve", "--config", configPath]),
    ],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitFor("the DNAT service's heartbeat", async () => {
    const status = await Promise.race([child.status, Promise.resolve(undefined)]);
    if (status) {
      throw new Error(`dnat serve exited ${status.code}: see ${dir}/log/dnat-service.out`);
    }
    return await Deno.stat(heartbeat).then(() => true, () => false);
  }, 20_000);
  return child;
}
