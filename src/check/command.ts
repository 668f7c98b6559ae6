/**
 * `xferproxy check`: config validation, the option spec, and the audits of
 * the host, its users and the internal servers. Read-only: it never writes.
 * @module
 */

import {
  CONFIG_OPTION,
  type ConfigArg,
  parseStrict,
  resolveConfigPath,
  UsageError,
  withConfig,
} from "../cli/parse.ts";
import type { ModeCommand } from "../cli/command.ts";
import { DEFAULT_CONFIG_PATH } from "../config/spec.ts";
import type { Fs } from "../config/fs.ts";
import { VERSION } from "../version.ts";
import { CHECK_PROGRAMS, type CheckHost } from "./host.ts";

/** What `xferproxy check` can look at. */
export const CHECK_TOPICS = ["config", "defaults", "system", "users", "upstreams"] as const;
/** One of `CHECK_TOPICS`, or everything. */
export type CheckTopic = (typeof CHECK_TOPICS)[number] | "all";

/** `xferproxy check`'s arguments. */
export interface CheckArgs extends ConfigArg {
  readonly topic: CheckTopic;
  readonly json: boolean;
  readonly root?: string;
  readonly sshdConfig?: string;
  /** `check upstreams`: the account to log in as where a rule uses each user's own. */
  readonly user?: string;
}

/** What check mode reads the system through (platform/check_platform.ts). */
export interface CheckPlatform {
  readonly fs: Fs;
  /** A read-only view of the system under `root` ("/": the live one). */
  host(root: string): CheckHost;
}

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
    const configPath = resolveConfigPath(args, context.env, DEFAULT_CONFIG_PATH);
    const { fs, host: hostAt } = await platform();
    if (args.topic === "defaults" || (args.topic === "config" && !args.json && !args.root)) {
      const { checkConfig, checkDefaults } = await import("./config.ts");
      return args.topic === "defaults"
        ? checkDefaults(VERSION, context.output)
        : await checkConfig(configPath, fs, context.output);
    }
    const { runCheck } = await import("./run.ts");
    const host = hostAt(args.root ?? "/");
    return await runCheck(host, {
      topic: args.topic,
      configPath,
      sshdConfigPath: args.sshdConfig ?? "/etc/ssh/sshd_config",
      executable: context.self,
      json: args.json,
      upstreams: async (config) => {
        // ssh2 is loaded only here: no other check, and no session, pays for it.
        const { tryLogin } = await import("../ssh/login_check.ts");
        const { checkUpstreams } = await import("./upstreams.ts");
        return await checkUpstreams(config, { readText: host.readText, login: tryLogin }, {
          ...(args.user !== undefined ? { user: args.user } : {}),
        });
      },
    }, context.output);
  },
};

/**
 * Parses the words after `xferproxy check`.
 * @throws {UsageError}
 */
export function parseCheckArgs(args: readonly string[]): CheckArgs {
  const options = {
    ...CONFIG_OPTION,
    json: { type: "boolean" },
    root: { type: "string" },
    "sshd-config": { type: "string" },
    user: { type: "string" },
  } as const;
  const { values, positionals } = parseStrict(args, "check", options, true);
  const [topicText, extra] = positionals;
  if (extra !== undefined) {
    throw new UsageError(`unexpected argument "${extra}" for check`, "check");
  }
  if (topicText !== undefined && !isTopic(topicText)) {
    throw new UsageError(
      `unknown check "${topicText}"; expected one of: ${CHECK_TOPICS.join(", ")}`,
      "check",
    );
  }
  const topic: CheckTopic = topicText ?? "all";
  if (values.root !== undefined && !values.root.startsWith("/")) {
    throw new UsageError(`--root must be an absolute path, got "${values.root}"`, "check");
  }
  if (topic === "upstreams" && values.root !== undefined) {
    throw new UsageError(
      "check upstreams logs in to live servers: it does not take --root",
      "check",
    );
  }
  if (values.user !== undefined && topic !== "upstreams") {
    throw new UsageError("--user goes with check upstreams", "check");
  }
  const sshdConfig = values["sshd-config"];
  return withConfig({
    topic,
    json: values.json ?? false,
    ...(values.root !== undefined ? { root: values.root } : {}),
    ...(values.user !== undefined ? { user: values.user } : {}),
    ...(sshdConfig !== undefined ? { sshdConfig } : {}),
  }, values.config);
}

function isTopic(text: string): text is (typeof CHECK_TOPICS)[number] {
  return (CHECK_TOPICS as readonly string[]).includes(text);
}
