/**
 * Check mode as a process: config validation, the option spec, and the
 * audits of the host, its users and the internal servers.
 * @module
 */

import type { Command } from "../cli/parse.ts";
import { checkConfig, checkDefaults } from "../check/config.ts";
import { runCheck } from "../check/run.ts";
import { checkHost } from "./check_host.ts";
import { realRunner } from "./runner.ts";
import { realFs } from "./fs.ts";
import type { Output } from "../cli/output.ts";
import { VERSION } from "../version.ts";

/** Runs `xferproxy check …`; returns the exit status. */
export async function runCheckMode(
  command: Extract<Command, { mode: "check" }>,
  configPath: string,
  output: Output,
): Promise<number> {
  if (command.topic === "config" && !command.json && command.root === undefined) {
    return await checkConfig(configPath, realFs, output);
  }
  if (command.topic === "defaults") return checkDefaults(VERSION, output);
  const host = checkHost(command.root ?? "/", realRunner);
  return await runCheck(host, {
    topic: command.topic,
    configPath,
    sshdConfigPath: command.sshdConfig ?? "/etc/ssh/sshd_config",
    json: command.json,
    upstreams: async (config) => {
      // ssh2 is loaded only here: no other check, and no session, pays for it.
      const { tryLogin } = await import("../ssh/login_check.ts");
      const { checkUpstreams } = await import("../check/upstreams.ts");
      return await checkUpstreams(config, { readText: host.readText, login: tryLogin }, {
        ...(command.user !== undefined ? { user: command.user } : {}),
      });
    },
  }, output);
}
