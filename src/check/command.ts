/**
 * `xferproxy check`: config validation, the option spec, and the audits of
 * the host, its users and the internal servers. Read-only: it never writes.
 * @module
 */

import type { ModeCommand } from "../cli/command.ts";
import { type CheckArgs, parseCheckArgs } from "./args.ts";
import { CHECK_PROGRAMS } from "./host.ts";
import type { CheckPlatform } from "./run.ts";

const USAGE =
  `Usage: xferproxy check [config|defaults|system|users] [--config PATH] [--sshd-config PATH]
                       [--root DIR] [--json]
       xferproxy check upstreams [--user NAME] [--config PATH] [--json]

  config     validate the config file; prints OK or every problem (like asuserdata -v)
  defaults   print every option with its default and a one-line description (like asuserdata -s)
  system     audit the host: ip_forward, netfilter tools, sudoers, SELinux, /etc/hosts,
             sshd_config, known_hosts, keyfiles, the state directory, the DNAT service,
             sessions whose owner has ended, /usr/bin/ssh
  users      audit the accounts (like asp-check): full-access, proxy and insecure users
  upstreams  log in to every internal server of every rule with its key and account,
             against the pinned host key (not part of a plain "check")
  (none)     config, system and users with a summary

Options:
  --config PATH        config file (default: $XFERPROXY_CONFIG, else /etc/xferproxy/aspera.conf)
  --sshd-config PATH   sshd_config to audit (default /etc/ssh/sshd_config)
  --root DIR           audit a mounted image or fixture tree: every path is read inside DIR
                       and no program runs
  --user NAME          check upstreams: the account for rules that use each user's own
  --json               {"ok", "findings": [{id, severity, message, fix}]}

Check mode never writes. Only check upstreams opens connections; the other checks may run
iptables, iptables-save, nft, conntrack, sysctl and ps on the live system. Every finding:
docs/check.md. Exit status: 0 clean (warnings allowed), 1 an error was found, 2 usage error.`;

/** The check mode. */
export const checkMode: ModeCommand<CheckArgs, CheckPlatform> = {
  name: "check",
  summary: "  check      validate the config, print the option spec, audit the host and users",
  usage: USAGE,
  parse: parseCheckArgs,
  needs(args) {
    // Reads files; no network, no writes.
    if (args.topic === "config" || args.topic === "defaults") return { read: true, env: true };
    // Logs in to the internal servers: connections, and nothing else.
    if (args.topic === "upstreams") return { read: true, env: true, net: true };
    // The live-system audit runs only the fixed, read-only command lines of host.ts (queryArgv).
    return { read: true, env: true, run: CHECK_PROGRAMS };
  },
  async run(args, platform, context) {
    const [{ runCheckMode }, real] = await Promise.all([import("./run.ts"), platform()]);
    return await runCheckMode(args, real, context);
  },
};
