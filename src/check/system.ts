/**
 * `xferproxy check system`: the host settings the proxy depends on (Aspera Proxy's
 * "Adjust settings in your Linux environment", "Securing Your SSH Server",
 * "Troubleshooting"), each finding with its fix.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { hostKeyAlgorithms, parseKnownHosts } from "../ssh/known_hosts.ts";
import { type Finding, finding } from "./findings.ts";
import { type CheckHost, includeTexts } from "./host.ts";
import {
  effectiveValue,
  globalValues,
  parseSshdConfig,
  type ProxyBlock,
  proxyBlocks,
  type SshdDirective,
} from "./sshd_config.ts";
import { checkSudoers } from "./sudoers_check.ts";
import { checkAuthorizedKeys, checkKeyfiles } from "./keys.ts";
import { checkDnatState } from "./dnat_state.ts";
import { checkRootLog } from "./root_log.ts";
import { checkOpenssl } from "./forward.ts";
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

/** sshd_config with every Include spliced in. */
export async function loadSshd(
  host: CheckHost,
  path: string,
): Promise<SshdDirective[] | undefined> {
  const text = await host.readText(path);
  if (text === undefined) return undefined;
  const included = new Map<string, string[]>();
  const collect = async (body: string, depth: number) => {
    for (const m of body.matchAll(/^\s*include\s+(.+)$/gim)) {
      for (const pattern of (m[1] as string).replace(/#.*/, "").trim().split(/\s+/)) {
        if (included.has(pattern) || depth > 8) continue;
        const texts = await includeTexts(host, pattern);
        included.set(pattern, texts);
        for (const t of texts) await collect(t, depth + 1);
      }
    }
  };
  await collect(text, 0);
  return parseSshdConfig(text, (pattern) => included.get(pattern) ?? []);
}

/** The members of the groups and users an sshd block covers, from /etc/group and /etc/passwd. */
export async function proxyUsers(
  host: CheckHost,
  blocks: readonly ProxyBlock[],
): Promise<string[]> {
  const groups = new Set(blocks.flatMap((b) => b.groups));
  const users = new Set(blocks.flatMap((b) => b.users));
  const groupText = (await host.readText("/etc/group")) ?? "";
  const gids = new Set<string>();
  for (const line of groupText.split("\n")) {
    const [name, , gid, members = ""] = line.split(":");
    if (name && groups.has(name)) {
      if (gid) gids.add(gid);
      members.split(",").filter(Boolean).forEach((m) => users.add(m));
    }
  }
  for (const line of ((await host.readText("/etc/passwd")) ?? "").split("\n")) {
    const [name, , , gid] = line.split(":");
    if (name && gid && gids.has(gid)) users.add(name);
  }
  return [...users].sort();
}

function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, "0");
}

/** Runs every system check. */
export async function checkSystem(host: CheckHost, inputs: SystemInputs): Promise<Finding[]> {
  const out: Finding[] = [];
  const live = host.root === "/";

  // IP forwarding (Aspera Proxy: "IP forwarding must be enabled").
  const forward = live
    ? (await host.run({ kind: "ip_forward" }))?.stdout.trim()
    : (await host.readText("/proc/sys/net/ipv4/ip_forward"))?.trim();
  if (forward === "1") out.push(finding.info("system.ip_forward", "net.ipv4.ip_forward is 1"));
  else {
    out.push(
      finding.error(
        "system.ip_forward",
        `net.ipv4.ip_forward is ${forward ?? "unknown"}: the kernel will not forward UDP`,
        "sysctl -w net.ipv4.ip_forward=1 and set net.ipv4.ip_forward=1 in /etc/sysctl.conf",
      ),
    );
  }

  // Netfilter and conntrack tools, with versions on the live system.
  const backend = await describeBackend(inputs.config?.server.dnatBackend ?? DEFAULT_BACKEND);
  const tools = [{ name: backend.tool }, { name: "conntrack" }];
  for (const tool of tools) {
    let version: string | undefined;
    if (live) {
      const r = await host.run({ kind: "version", program: tool.name });
      version = r && r.code === 0 ? (r.stdout || r.stderr).trim().split("\n")[0] : undefined;
    } else {
      const paths = [`/usr/sbin/${tool.name}`, `/sbin/${tool.name}`, `/usr/bin/${tool.name}`];
      const found = (await Promise.all(paths.map((p) => host.stat(p)))).some(Boolean);
      version = found ? "present (version not read under --root)" : undefined;
    }
    if (version) out.push(finding.info(`system.tool.${tool.name}`, `${tool.name}: ${version}`));
    else {out.push(
        finding.error(
          `system.tool.${tool.name}`,
          `${tool.name} is not installed`,
          installHint(tool.name),
        ),
      );}
  }

  // The DNAT service makes a backend's changes through its library where it finds it.
  const libraries = backend.libraries ?? [];
  if (libraries.length > 0) {
    const present = await Promise.all(libraries.map((p) => host.stat(p)));
    const library = libraries.find((_, i) => present[i] !== undefined);
    out.push(
      library
        ? finding.info("system.libnftables", `libnftables: ${library} (changes made in-process)`)
        : finding.warning(
          "system.libnftables",
          `libnftables is not at ${
            libraries.join(", ")
          }: every DNAT change runs nft (about 20 ms to delete instead of under 1 ms)`,
          installHint("libnftables"),
        ),
    );
  }

  // Forward HTTPS without <cert_file>/<key_file>: the daemon makes its certificate with openssl.
  out.push(...await checkOpenssl(host, inputs.config));

  // sudoers: the helper's rule as sudo reads it, no raw netfilter entries, no requiretty.
  out.push(
    ...await checkSudoers(
      host,
      (await loadSshd(host, inputs.sshdConfigPath)) ?? [],
      inputs.executable,
    ),
  );

  // SELinux (Aspera Proxy: permissive or disabled, not enforcing).
  const selinux = /^\s*SELINUX\s*=\s*(\w+)/m.exec(
    (await host.readText("/etc/selinux/config")) ?? "",
  )?.[1];
  if (selinux === "enforcing") {
    out.push(
      finding.error(
        "system.selinux",
        "SELinux is enforcing",
        "set SELINUX=permissive in /etc/selinux/config (or write a policy for xferproxy)",
      ),
    );
  }

  // /etc/hosts maps localhost (Aspera Proxy guide, step 5.2).
  const hosts = (await host.readText("/etc/hosts")) ?? "";
  if (!/^\s*127\.0\.0\.1\s+(\S+\s+)*localhost(\s|$)/m.test(hosts)) {
    out.push(
      finding.warning(
        "system.hosts_localhost",
        '/etc/hosts has no "127.0.0.1 localhost" line',
        'add "127.0.0.1 localhost" to /etc/hosts',
      ),
    );
  }

  out.push(...await checkSshd(host, inputs));
  if (inputs.config) {
    out.push(...await checkConfiguredFiles(host, inputs.config, inputs.sshdConfigPath));
  }
  if (inputs.config) out.push(...await checkDnatState(host, inputs.config, inputs.now));
  return out;
}

async function checkSshd(host: CheckHost, inputs: SystemInputs): Promise<Finding[]> {
  const out: Finding[] = [];
  const sshd = await loadSshd(host, inputs.sshdConfigPath);
  if (!sshd) {
    return [
      finding.error(
        "sshd.config",
        `cannot read ${inputs.sshdConfigPath}`,
        "install openssh-server, or pass --sshd-config PATH",
      ),
    ];
  }
  const ports = globalValues(sshd, "port");
  if (ports.length === 0 || ports.includes("22")) {
    out.push(
      finding.warning(
        "sshd.port",
        "sshd listens on port 22, the one every scanner tries",
        "Port 33001 in sshd_config (Aspera Proxy's recommendation); keep 22 only while clients migrate",
      ),
    );
  }
  const blocks = proxyBlocks(sshd);
  const block = blocks[0];
  if (effectiveValue(sshd, undefined, "passwordauthentication") !== "no") {
    out.push(
      finding.warning(
        "sshd.password_auth",
        "password authentication is on",
        "PasswordAuthentication no (keys only)",
      ),
    );
  }
  if (effectiveValue(sshd, undefined, "permitrootlogin") !== "no") {
    out.push(finding.warning("sshd.root_login", "root may log in over SSH", "PermitRootLogin no"));
  }
  if (!block) {
    out.push(
      finding.error(
        "sshd.force_command",
        'no Match block runs "ForceCommand xferproxy reverse": proxy users would get a shell',
        "add the Match Group block from docs/reverse.md",
      ),
    );
    return out;
  }
  out.push(finding.info("sshd.force_command", `"Match ${block.match}" forces xferproxy reverse`));
  const forwardingOff = effectiveValue(sshd, block, "disableforwarding") === "yes" ||
    effectiveValue(sshd, block, "allowtcpforwarding") === "no";
  if (!forwardingOff) {
    out.push(
      finding.error(
        "sshd.forwarding",
        `proxy users (Match ${block.match}) may forward ports, bypassing the proxy`,
        "DisableForwarding yes in the Match block",
      ),
    );
  }
  const usesDomain = inputs.config?.server.rproxy.rules.some((r) => r.hostDomain) ?? false;
  const acceptEnv = sshd.filter((d) =>
    d.keyword === "acceptenv" && (d.match === undefined || d.match === block.match)
  ).flatMap((d) => d.args);
  if (
    usesDomain && !acceptEnv.some((e) => e === "XFERPROXY_HOST" || e === "XFERPROXY_*" || e === "*")
  ) {
    out.push(
      finding.error(
        "sshd.accept_env",
        "a rule uses host_domain but sshd does not accept XFERPROXY_HOST",
        "AcceptEnv XFERPROXY_HOST in the Match block",
      ),
    );
  }
  const broad = acceptEnv.filter(acceptsMoreThanHost);
  if (broad.length > 0) {
    out.push(
      finding.warning(
        "sshd.accept_env_broad",
        `sshd lets proxy clients set xferproxy variables other than XFERPROXY_HOST (AcceptEnv ${
          broad.join(" ")
        })`,
        "accept only XFERPROXY_HOST",
      ),
    );
  }
  return out;
}

/** Names xferproxy or its launcher could read, and one for any future variable. */
const OWN_VARIABLES = ["XFERPROXY_CONFIG", "XFERPROXY_BIN", "XFERPROXY_PROXY_PASS", "XFERPROXY_X"];

/** True when an AcceptEnv pattern (`*` and `?` wildcards) covers an xferproxy variable besides XFERPROXY_HOST. */
export function acceptsMoreThanHost(pattern: string): boolean {
  const glob = new RegExp(
    "^" + pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") +
      "$",
  );
  return OWN_VARIABLES.some((name) => glob.test(name));
}

async function checkConfiguredFiles(
  host: CheckHost,
  config: Config,
  sshdConfigPath: string,
): Promise<Finding[]> {
  const out: Finding[] = [];
  const rproxy = config.server.rproxy;
  if (rproxy.enabled) {
    const knownHosts = await host.readText(rproxy.knownHosts);
    if (knownHosts === undefined) {
      out.push(
        finding.error(
          "known_hosts.file",
          `cannot read ${rproxy.knownHosts}`,
          `ssh-keyscan the internal servers into ${rproxy.knownHosts}, then verify the fingerprints`,
        ),
      );
    } else {
      const entries = parseKnownHosts(knownHosts).entries;
      for (const rule of rproxy.rules) {
        for (const up of rule.upstreams) {
          if ((await hostKeyAlgorithms(entries, up.ip.text, up.port)).length === 0) {
            out.push(
              finding.error(
                "known_hosts.missing",
                `no known_hosts entry for ${
                  formatEndpoint(up)
                } (rule ${rule.index}): sessions to it are refused`,
                `ssh-keyscan -p ${up.port} ${up.ip.text} >> ${rproxy.knownHosts}, after checking the fingerprint`,
              ),
            );
          }
        }
      }
    }
    const sshd = await loadSshd(host, sshdConfigPath);
    const users = await proxyUsers(host, proxyBlocks(sshd ?? []));
    out.push(...await checkKeyfiles(host, rproxy, users));
    out.push(...await checkAuthorizedKeys(host, sshd ?? [], users));
  }
  const dirs: Array<{ path: string; what: string }> = [];
  if (rproxy.logDirectory) dirs.push({ path: rproxy.logDirectory, what: "log directory" });
  for (const { path, what } of dirs) {
    const info = await host.stat(path);
    if (!info || !info.isDirectory) {
      out.push(
        finding.error(
          "dirs.missing",
          `${what} ${path} does not exist`,
          `install -d -m 2770 -g xferproxy ${path}`,
        ),
      );
    } else if (info.uid !== 0 || (info.mode & 0o002) !== 0) {
      out.push(
        finding.error(
          "dirs.owner",
          `${what} ${path} must be owned by root and not world-writable (owner uid ${info.uid}, mode ${
            modeText(info.mode)
          })`,
          `chown root ${path} && chmod 2770 ${path}`,
        ),
      );
    }
  }
  if (rproxy.logDirectory) out.push(...await checkRootLog(host, rproxy.logDirectory));
  return out;
}
