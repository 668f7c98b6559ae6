/**
 * `xferproxy check upstreams`: logs in to every internal server of every
 * rule with the rule's key and account, against the pinned host key, and
 * says per server what works and what to fix. The login comes in as a
 * function, so this is tested without a network.
 * @module
 */

import { type Config, expandKeyfile, InvalidUserError } from "../config/mod.ts";
import { formatEndpoint } from "../net/endpoint.ts";
import { parseKnownHosts, pinnedHostKeys } from "../ssh/known_hosts.ts";
import type { LoginOutcome, LoginSpec } from "../ssh/login_check.ts";
import { classifyPrivateKey } from "../ssh/private_key.ts";
import { type Finding, finding } from "./findings.ts";

/** What the audit reads and how it logs in. */
export interface UpstreamsDeps {
  readText(path: string): Promise<string | undefined>;
  login(spec: LoginSpec): Promise<LoginOutcome>;
}

/** The audit's findings, one or more per rule and server. */
export async function checkUpstreams(
  config: Config,
  deps: UpstreamsDeps,
  options: { user?: string } = {},
): Promise<Finding[]> {
  const rproxy = config.server.rproxy;
  if (!rproxy.enabled) {
    return [finding.info("upstream.disabled", "the reverse proxy is disabled: no server to check")];
  }
  const knownHostsText = await deps.readText(rproxy.knownHosts);
  if (knownHostsText === undefined) {
    return [
      finding.error(
        "upstream.known_hosts",
        `known_hosts ${rproxy.knownHosts} cannot be read`,
        `ssh-keyscan the internal servers into ${rproxy.knownHosts} (docs/reverse.md), or run check as root`,
      ),
    ];
  }
  const knownHosts = parseKnownHosts(knownHostsText).entries;
  const out: Finding[] = [];
  for (const rule of rproxy.rules) {
    const where = `rule ${rule.index}`;
    const user = rule.squashUser ?? options.user;
    if (user === undefined) {
      out.push(finding.warning(
        "upstream.user",
        `${where} logs in with each proxy user's own account and key`,
        `run xferproxy check upstreams --user NAME to check one of them`,
      ));
      continue;
    }
    let keyPath: string;
    try {
      keyPath = expandKeyfile(rule.keyfile ?? "", user);
    } catch (error) {
      if (!(error instanceof InvalidUserError)) throw error;
      out.push(finding.error("upstream.user", `${where}: ${error.message}`, "use a valid name"));
      continue;
    }
    const keyText = await deps.readText(keyPath);
    if (keyText === undefined) {
      out.push(finding.error(
        "upstream.keyfile",
        `${where}: keyfile ${keyPath} cannot be read`,
        "run check as root, or create the key (docs/reverse.md)",
      ));
      continue;
    }
    const key = classifyPrivateKey(keyText, keyPath);
    if (!key.ok) {
      out.push(
        finding.error("upstream.keyfile", `${where}: ${key.message}`, "use an unencrypted key"),
      );
      continue;
    }
    for (const upstream of rule.upstreams) {
      const host = upstream.ip.text;
      const label = `${where} ${formatEndpoint(upstream)} as ${user}`;
      const outcome = await deps.login({
        host,
        port: upstream.port,
        username: user,
        privateKey: keyText,
        timeoutMs: rule.connectTimeout * 1000,
        pinned: await pinnedHostKeys(knownHosts, host, upstream.port),
      });
      out.push(describe(outcome, label, { keyPath, user, host, port: upstream.port }));
    }
  }
  return out;
}

function describe(
  outcome: LoginOutcome,
  label: string,
  at: { keyPath: string; user: string; host: string; port: number },
): Finding {
  switch (outcome.kind) {
    case "ok":
      return finding.info("upstream.ok", `${label}: logged in (host key ${outcome.fingerprint})`);
    case "unreachable":
    case "timeout":
    case "protocol":
      return finding.error(
        "upstream.unreachable",
        `${label}: ${outcome.message}`,
        "check that sshd runs there and the proxy may reach it",
      );
    case "hostkey": {
      const scan = `ssh-keyscan${at.port === 22 ? "" : ` -p ${at.port}`} ${at.host}`;
      if (outcome.reason === "unknown") {
        return finding.error(
          "upstream.hostkey",
          `${label}: no known_hosts entry; it presents ${outcome.presented}`,
          `verify that fingerprint with the server's administrator, then add the output of ${scan}`,
        );
      }
      return finding.error(
        "upstream.hostkey",
        `${label}: host key ${outcome.reason}; it presents ${outcome.presented}, known_hosts has ${
          outcome.expected.join(", ") || "none"
        }`,
        `find out why the key changed; once verified, replace its known_hosts line with ${scan}`,
      );
    }
    case "refused":
      return finding.error(
        "upstream.login",
        `${label}: ${outcome.message}`,
        `append ${at.keyPath}.pub to ~${at.user}/.ssh/authorized_keys on the server`,
      );
  }
}
