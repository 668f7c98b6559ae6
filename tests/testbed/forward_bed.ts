/**
 * A forward-proxy testbed: an inside client, the proxy, an outside server.
 *
 *   inside (198.18.30.2) ── proxy (198.18.30.1 │ 198.19.40.1) ── outside (198.19.40.2: sshd, iperf3)
 *   and the same in IPv6 (2001:db8:30::/64 │ 2001:db8:40::/64, see FIP6)
 *
 * The inside network has no route to the outside: only the proxy's DNAT
 * carries sessions across. Everything is removed by `close()`.
 * @module
 */

import { must, type Ran, run, waitFor } from "./exec.ts";
import { addNamespaces, addVeth } from "./netns.ts";
import {
  addTestUser,
  keygen,
  publicKey,
  sshClientOptions,
  sshdBaseConfig,
  startSshd,
} from "./sshd.ts";
import { BINARY, underUnit } from "./paths.ts";
import { namespaceName, prefixed } from "./prefix.ts";

/** Addresses of the forward testbed. */
export const FIP = {
  inside: "198.18.30.2",
  proxyIn: "198.18.30.1",
  proxyOut: "198.19.40.1",
  outside: "198.19.40.2",
} as const;
/** The same hosts' IPv6 addresses (documentation range, inside the test's namespaces only). */
export const FIP6 = {
  inside: "2001:db8:30::2",
  proxyIn: "2001:db8:30::1",
  proxyOut: "2001:db8:40::1",
  outside: "2001:db8:40::2",
} as const;
/** The account on the outside server. */
export const OUT_USER = prefixed("out");

/** A running forward testbed. */
export interface ForwardBed {
  readonly dir: string;
  readonly ns: { inside: string; proxy: string; outside: string };
  readonly configPath: string;
  /** Writes the config and (re)starts the daemon with it. */
  startDaemon(config: string): Promise<void>;
  stopDaemon(): Promise<string>;
  /** The daemon's stderr so far. */
  daemonLog(): string;
  /**
   * The pid of the process `startDaemon` spawned (undefined when stopped): `ip netns exec`, the
   * unit sandbox and the launcher each exec the next, so it ends up as the daemon's Deno.
   */
  daemonPid(): number | undefined;
  inNs(
    ns: string,
    argv: string[],
    options?: { stdin?: string; timeoutMs?: number; env?: Record<string, string> },
  ): Promise<Ran>;
  /** ssh options for the outside server, from the inside, through a ProxyCommand. */
  sshOptions(proxyCommand: string): string[];
  close(): Promise<void>;
}

/** The daemon config with overrides inside `<proxy>` and `<server>`. */
export function forwardConfig(dir: string, proxyExtra = "", serverExtra = ""): string {
  return `<CONF version="2"><server>
  <enable_http>true</enable_http>
  <state_directory>${dir}/state</state_directory>
  ${serverExtra}
  <proxy>
    <enabled>true</enabled>
    <authentication>true</authentication>
    <users_file>${dir}/users.json</users_file>
    <port_range_low>5000</port_range_low>
    <port_range_high>5199</port_range_high>
    <cleanup_interval>1</cleanup_interval>
    <keepalive_interval>1</keepalive_interval>
    <session_timeout>4</session_timeout>
    ${proxyExtra}
  </proxy>
  <rproxy><log_level>1</log_level></rproxy>
</server></CONF>
`;
}

/** Builds the testbed (root, iproute2, OpenSSH). */
export async function createForwardBed(): Promise<ForwardBed> {
  const id = namespaceName("f");
  const ns = { inside: `${id}i`, proxy: `${id}p`, outside: `${id}o` };
  const dir = await Deno.makeTempDir({ prefix: "xferproxy-fwd-" });
  await Deno.chmod(dir, 0o755);
  const cleanups: Array<() => Promise<unknown>> = [];
  const children: Deno.ChildProcess[] = [];
  let daemon: Deno.ChildProcess | undefined;
  let daemonText = "";
  let daemonDone: Promise<void> = Promise.resolve();
  const bed: ForwardBed = {
    dir,
    ns,
    configPath: `${dir}/aspera.conf`,
    async startDaemon(config) {
      await bed.stopDaemon();
      await Deno.writeTextFile(bed.configPath, config);
      daemonText = "";
      daemon = new Deno.Command("ip", {
        args: [
          "netns",
          "exec",
          ns.proxy,
          ...underUnit("xferproxy-forward", [BINARY, "forward", "--config", bed.configPath]),
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const reader = daemon.stderr.pipeThrough(new TextDecoderStream()).getReader();
      daemonDone = (async () => {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          daemonText += value;
        }
      })();
      await waitFor(
        "the forward daemon to start",
        // A start-up error is an ERR line or a one-line message; warnings come before a start.
        () =>
          Promise.resolve(
            /Started on port|ERR|xferproxy: (?!WARN |LOG |DBG )[A-Z]/.test(daemonText),
          ),
        20_000,
      );
      if (!daemonText.includes("Started on port")) {
        throw new Error(`daemon did not start: ${daemonText}`);
      }
    },
    async stopDaemon() {
      if (!daemon) return daemonText;
      try {
        daemon.kill("SIGTERM");
      } catch { /* gone */ }
      await daemon.status;
      await daemonDone;
      daemon = undefined;
      return daemonText;
    },
    daemonLog: () => daemonText,
    daemonPid: () => daemon?.pid,
    inNs: (name, argv, o = {}) =>
      run(["ip", "netns", "exec", name, ...argv], {
        ...(o.stdin !== undefined ? { stdin: o.stdin } : {}),
        ...(o.env ? { env: o.env } : {}),
        timeoutMs: o.timeoutMs ?? 60_000,
      }),
    sshOptions: (proxyCommand) => [
      ...sshClientOptions(`${dir}/known_hosts`, `${dir}/client_key`),
      "-o",
      `ProxyCommand=${proxyCommand}`,
    ],
    async close() {
      await bed.stopDaemon().catch(() => {});
      for (const child of children) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        await child.status;
      }
      for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  try {
    const ipn = await addNamespaces(Object.values(ns), cleanups);
    await addVeth(ipn, [ns.inside, "i0"], [ns.proxy, "pi"]);
    await addVeth(ipn, [ns.outside, "o0"], [ns.proxy, "po"]);
    await ipn(ns.inside, "addr", "add", `${FIP.inside}/24`, "dev", "i0");
    await ipn(ns.proxy, "addr", "add", `${FIP.proxyIn}/24`, "dev", "pi");
    await ipn(ns.proxy, "addr", "add", `${FIP.proxyOut}/24`, "dev", "po");
    await ipn(ns.outside, "addr", "add", `${FIP.outside}/24`, "dev", "o0");
    // nodad: usable at once, no duplicate address detection wait.
    await ipn(ns.inside, "-6", "addr", "add", `${FIP6.inside}/64`, "dev", "i0", "nodad");
    await ipn(ns.proxy, "-6", "addr", "add", `${FIP6.proxyIn}/64`, "dev", "pi", "nodad");
    await ipn(ns.proxy, "-6", "addr", "add", `${FIP6.proxyOut}/64`, "dev", "po", "nodad");
    await ipn(ns.outside, "-6", "addr", "add", `${FIP6.outside}/64`, "dev", "o0", "nodad");
    for (
      const [name, dev] of [[ns.inside, "i0"], [ns.proxy, "pi"], [ns.proxy, "po"], [
        ns.outside,
        "o0",
      ]] as const
    ) {
      await ipn(name, "link", "set", dev, "up");
    }
    // Deliberately no route from inside to outside, nor back: only DNAT + masquerade connect them.
    await must(["ip", "netns", "exec", ns.proxy, "sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    await must([
      "ip",
      "netns",
      "exec",
      ns.proxy,
      "sysctl",
      "-qw",
      "net.ipv6.conf.all.forwarding=1",
    ]);

    await addTestUser(OUT_USER, `${dir}/out-home`, cleanups);
    await keygen(`${dir}/client_key`);
    await keygen(`${dir}/host_key`);
    await Deno.copyFile(`${dir}/client_key.pub`, `${dir}/authorized_keys`);
    await Deno.writeTextFile(
      `${dir}/known_hosts`,
      `${FIP.outside} ${await publicKey(`${dir}/host_key.pub`)}\n`,
    );
    await Deno.writeTextFile(
      `${dir}/sshd_config`,
      sshdBaseConfig({
        listen: [FIP.outside, FIP6.outside],
        hostKey: `${dir}/host_key`,
        pidFile: `${dir}/sshd.pid`,
        authorizedKeys: `${dir}/authorized_keys`,
      }) + "\n",
    );
    children.push(
      await startSshd(ns.outside, `${dir}/sshd_config`, { waitFor: [FIP.outside, FIP6.outside] }),
    );
    for (const address of [FIP.outside, FIP6.outside]) {
      children.push(new Deno.Command("ip", {
        args: ["netns", "exec", ns.outside, "iperf3", "-s", "-p", "5201", "--bind", address],
        stdin: "null",
        stdout: "null",
        stderr: "null",
      }).spawn());
    }
    await waitFor("outside iperf3", async () => {
      const probe = await run(["ip", "netns", "exec", ns.outside, "ss", "-Hltn"]);
      return probe.stdout.includes(`${FIP.outside}:5201`) &&
        probe.stdout.includes(`[${FIP6.outside}]:5201`);
    });
  } catch (error) {
    await bed.close();
    throw error;
  }
  return bed;
}
