/**
 * `check system`'s audit of the files the config names: known_hosts and its
 * entries for every upstream, the keyfiles and the proxy users' authorized
 * keys, the log directory and root's own log file in it.
 * @module
 */

import type { Config } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { hostKeyAlgorithms, parseKnownHosts } from "../ssh/known_hosts.ts";
import { type Finding, finding } from "./findings.ts";
import { type CheckHost, modeText } from "./host.ts";
import { checkAuthorizedKeys, checkKeyfiles } from "./keys.ts";
import { checkRootLog } from "./root_log.ts";
import { loadSshd, proxyUsers } from "./sshd.ts";
import { proxyBlocks } from "./sshd_config.ts";

/** The reverse proxy's pinned host keys: the file, and an entry for every upstream. */
export async function checkKnownHosts(host: CheckHost, config: Config): Promise<Finding[]> {
  const rproxy = config.server.rproxy;
  if (!rproxy.enabled) return [];
  const knownHosts = await host.readText(rproxy.knownHosts);
  if (knownHosts === undefined) {
    return [finding.error(
      "known_hosts.file",
      `cannot read ${rproxy.knownHosts}`,
      `ssh-keyscan the internal servers into ${rproxy.knownHosts}, then verify the fingerprints`,
    )];
  }
  const out: Finding[] = [];
  const entries = parseKnownHosts(knownHosts).entries;
  for (const rule of rproxy.rules) {
    for (const up of rule.upstreams) {
      if ((await hostKeyAlgorithms(entries, up.ip.text, up.port)).length === 0) {
        out.push(finding.error(
          "known_hosts.missing",
          `no known_hosts entry for ${
            formatEndpoint(up)
          } (rule ${rule.index}): sessions to it are refused`,
          `ssh-keyscan -p ${up.port} ${up.ip.text} >> ${rproxy.knownHosts}, after checking the fingerprint`,
        ));
      }
    }
  }
  return out;
}

/** The rules' keyfiles and the proxy users' authorized_keys. */
export async function checkKeys(
  host: CheckHost,
  config: Config,
  sshdConfigPath: string,
): Promise<Finding[]> {
  const rproxy = config.server.rproxy;
  if (!rproxy.enabled) return [];
  const sshd = (await loadSshd(host, sshdConfigPath)) ?? [];
  const users = await proxyUsers(host, proxyBlocks(sshd));
  return [
    ...await checkKeyfiles(host, rproxy, users),
    ...await checkAuthorizedKeys(host, sshd, users),
  ];
}

/** The log directory: root's, not world-writable, and root's own file in it. */
export async function checkLogDirectory(host: CheckHost, config: Config): Promise<Finding[]> {
  const path = config.server.rproxy.logDirectory;
  if (!path) return [];
  const info = await host.stat(path);
  const out: Finding[] = [];
  if (!info || !info.isDirectory) {
    out.push(finding.error(
      "dirs.missing",
      `log directory ${path} does not exist`,
      `install -d -m 2770 -g xferproxy ${path}`,
    ));
  } else if (info.uid !== 0 || (info.mode & 0o002) !== 0) {
    out.push(finding.error(
      "dirs.owner",
      `log directory ${path} must be owned by root and not world-writable (owner uid ${info.uid}, mode ${
        modeText(info.mode)
      })`,
      `chown root ${path} && chmod 2770 ${path}`,
    ));
  }
  out.push(...await checkRootLog(host, path));
  return out;
}
