/**
 * `xferproxy check`'s actions: the config and option spec printers, and the
 * audits of the host, its users and the internal servers. Loaded only when
 * check runs; the spec printer and the config check load no audit code.
 * @module
 */

import type { RunContext } from "../cli/command.ts";
import type { Fs } from "../config/fs.ts";
import { configSource } from "../config/source.ts";
import { VERSION } from "../version.ts";
import type { CheckArgs } from "./args.ts";
import type { CheckHost } from "./host.ts";

/** What check mode reads the system through (platform/check_platform.ts). */
export interface CheckPlatform {
  readonly fs: Fs;
  /** A read-only view of the system under `root` ("/": the live one). */
  host(root: string): CheckHost;
}

/** Runs `xferproxy check …`; returns the exit status. */
export async function runCheckMode(
  args: CheckArgs,
  platform: CheckPlatform,
  context: RunContext,
): Promise<number> {
  const configPath = configSource("administrator", args.configPath, context.env).path;
  if (args.topic === "defaults" || (args.topic === "config" && !args.json && !args.root)) {
    const { checkConfig, checkDefaults } = await import("./config.ts");
    return args.topic === "defaults"
      ? checkDefaults(VERSION, context.output)
      : await checkConfig(configPath, platform.fs, context.output);
  }
  const { runCheck } = await import("./audit.ts");
  const host = platform.host(args.root ?? "/");
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
}
