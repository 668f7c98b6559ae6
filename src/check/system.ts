/**
 * `xferproxy check system`: the host settings the proxy depends on (Aspera Proxy's
 * "Adjust settings in your Linux environment", "Securing Your SSH Server",
 * "Troubleshooting"), as a table of named checks, each finding with its fix.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { type Finding, finding } from "./findings.ts";
import type { CheckHost } from "./host.ts";
import { checkSshd, loadSshd, SSHD_CHECKS } from "./sshd.ts";
import { checkSudoers } from "./sudoers_check.ts";
import { checkDnatState } from "./dnat_state.ts";
import { checkOpenssl } from "./forward.ts";
import { checkKeys, checkKnownHosts, checkLogDirectory } from "./files.ts";
import { DEFAULT_BACKEND, describeBackend } from "../dnat/backends.ts";
import { installHint } from "../process/packages.ts";

/** What the system audit needs besides the host. */
export interface SystemInputs {
  /** The validated config, when it loaded. */
  readonly config?: Config;
  readonly sshdConfigPath: string;
  /** This xferproxy's path: what sudoers must name when sshd's ForceCommand names no path. */
  readonly executable: string;
  /** The audit's clock (the DNAT service's heartbeat age). */
  readonly now: number;
}

/** One named check of the host. */
export interface SystemCheck {
  readonly name: string;
  /** The finding ids it may report (docs/check.md lists each); `x.*` covers `x.<anything>`. */
  readonly ids: readonly string[];
  run(host: CheckHost, inputs: SystemInputs): Promise<Finding[]>;
}

/** A check of what the config names: nothing to say when it did not load. */
function ofConfig(
  check: (host: CheckHost, inputs: SystemInputs, config: Config) => Promise<Finding[]>,
): SystemCheck["run"] {
  return (host, inputs) => inputs.config ? check(host, inputs, inputs.config) : Promise.resolve([]);
}

/** IP forwarding (Aspera Proxy: "IP forwarding must be enabled"). */
async function checkIpForward(host: CheckHost): Promise<Finding[]> {
  const forward = host.root === "/"
    ? (await host.run({ kind: "ip_forward" }))?.stdout.trim()
    : (await host.readText("/proc/sys/net/ipv4/ip_forward"))?.trim();
  return [
    forward === "1" ? finding.info("system.ip_forward", "net.ipv4.ip_forward is 1") : finding.error(
      "system.ip_forward",
      `net.ipv4.ip_forward is ${forward ?? "unknown"}: the kernel will not forward UDP`,
      "sysctl -w net.ipv4.ip_forward=1 and set net.ipv4.ip_forward=1 in /etc/sysctl.conf",
    ),
  ];
}

/** The backend's netfilter tool and conntrack, with versions on the live system. */
async function checkTools(host: CheckHost, inputs: SystemInputs): Promise<Finding[]> {
  const backend = await describeBackend(inputs.config?.server.dnatBackend ?? DEFAULT_BACKEND);
  const out: Finding[] = [];
  for (const tool of [backend.tool, "conntrack"]) {
    let version: string | undefined;
    if (host.root === "/") {
      const r = await host.run({ kind: "version", program: tool });
      version = r && r.code === 0 ? (r.stdout || r.stderr).trim().split("\n")[0] : undefined;
    } else {
      const paths = [`/usr/sbin/${tool}`, `/sbin/${tool}`, `/usr/bin/${tool}`];
      const found = (await Promise.all(paths.map((p) => host.stat(p)))).some(Boolean);
      version = found ? "present (version not read under --root)" : undefined;
    }
    out.push(
      version
        ? finding.info(`system.tool.${tool}`, `${tool}: ${version}`)
        : finding.error(`system.tool.${tool}`, `${tool} is not installed`, installHint(tool)),
    );
  }
  return out;
}

/** The DNAT service makes a backend's changes through its library where it finds it. */
async function checkLibraries(host: CheckHost, inputs: SystemInputs): Promise<Finding[]> {
  const backend = await describeBackend(inputs.config?.server.dnatBackend ?? DEFAULT_BACKEND);
  const libraries = backend.libraries ?? [];
  if (libraries.length === 0) return [];
  const present = await Promise.all(libraries.map((p) => host.stat(p)));
  const library = libraries.find((_, i) => present[i] !== undefined);
  return [
    library
      ? finding.info("system.libnftables", `libnftables: ${library} (changes made in-process)`)
      : finding.warning(
        "system.libnftables",
        `libnftables is not at ${
          libraries.join(", ")
        }: every DNAT change runs nft (about 20 ms to delete instead of under 1 ms)`,
        installHint("libnftables"),
      ),
  ];
}

/** SELinux (Aspera Proxy: permissive or disabled, not enforcing). */
async function checkSelinux(host: CheckHost): Promise<Finding[]> {
  const mode = /^\s*SELINUX\s*=\s*(\w+)/m.exec(
    (await host.readText("/etc/selinux/config")) ?? "",
  )?.[1];
  return mode === "enforcing"
    ? [finding.error(
      "system.selinux",
      "SELinux is enforcing",
      "set SELINUX=permissive in /etc/selinux/config (or write a policy for xferproxy)",
    )]
    : [];
}

/** /etc/hosts maps localhost (Aspera Proxy guide, step 5.2). */
async function checkHostsFile(host: CheckHost): Promise<Finding[]> {
  const hosts = (await host.readText("/etc/hosts")) ?? "";
  return /^\s*127\.0\.0\.1\s+(\S+\s+)*localhost(\s|$)/m.test(hosts) ? [] : [finding.warning(
    "system.hosts_localhost",
    '/etc/hosts has no "127.0.0.1 localhost" line',
    'add "127.0.0.1 localhost" to /etc/hosts',
  )];
}

/** Every system check, in the order its findings print. */
export const SYSTEM_CHECKS: readonly SystemCheck[] = [
  { name: "ip_forward", ids: ["system.ip_forward"], run: checkIpForward },
  { name: "tools", ids: ["system.tool.*"], run: checkTools },
  { name: "libraries", ids: ["system.libnftables"], run: checkLibraries },
  {
    name: "openssl",
    ids: ["forward.openssl"],
    run: (host, inputs) => checkOpenssl(host, inputs.config),
  },
  {
    // The helper's rule as sudo reads it, no raw netfilter entries, no requiretty.
    name: "sudoers",
    ids: ["sudoers.dnat", "sudoers.skipped", "sudoers.raw_netfilter", "sudoers.requiretty"],
    run: async (host, inputs) =>
      checkSudoers(host, (await loadSshd(host, inputs.sshdConfigPath)) ?? [], inputs.executable),
  },
  { name: "selinux", ids: ["system.selinux"], run: checkSelinux },
  { name: "hosts", ids: ["system.hosts_localhost"], run: checkHostsFile },
  {
    name: "sshd",
    ids: ["sshd.config", ...SSHD_CHECKS.flatMap((c) => c.ids)],
    run: (host, inputs) => checkSshd(host, inputs.sshdConfigPath, inputs.config),
  },
  {
    name: "known_hosts",
    ids: ["known_hosts.file", "known_hosts.missing"],
    run: ofConfig((host, _, config) => checkKnownHosts(host, config)),
  },
  {
    name: "keys",
    ids: ["keyfile.missing", "keyfile.mode", "keyfile.unusable", "sshd.dsa_keys"],
    run: ofConfig((host, inputs, config) => checkKeys(host, config, inputs.sshdConfigPath)),
  },
  {
    name: "logs",
    ids: ["dirs.missing", "dirs.owner", "logs.root_dir", "logs.root_file"],
    run: ofConfig((host, _, config) => checkLogDirectory(host, config)),
  },
  {
    name: "dnat",
    ids: [
      "handoff.ssh",
      "dirs.state",
      "dirs.balancer",
      "dnat.service",
      "dnat.socket",
      "dnat.config",
      "dnat.drained",
      "dnat.health",
      "dnat.status",
      "logs.lost",
      "dnat.rules",
      "dnat.orphaned",
      "dnat.removing",
    ],
    run: ofConfig((host, inputs, config) => checkDnatState(host, config, inputs.now)),
  },
];

/** True when `id` is one a check declares. */
export function declares(check: SystemCheck, id: string): boolean {
  return check.ids.some((d) => d === id || (d.endsWith(".*") && id.startsWith(d.slice(0, -1))));
}

/** Each check that applies, with its findings. */
export async function runSystemChecks(
  host: CheckHost,
  inputs: SystemInputs,
): Promise<Array<{ check: SystemCheck; findings: Finding[] }>> {
  const out: Array<{ check: SystemCheck; findings: Finding[] }> = [];
  for (const check of SYSTEM_CHECKS) out.push({ check, findings: await check.run(host, inputs) });
  return out;
}

/** Runs every system check. */
export async function checkSystem(host: CheckHost, inputs: SystemInputs): Promise<Finding[]> {
  return (await runSystemChecks(host, inputs)).flatMap((r) => r.findings);
}
