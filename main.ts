/**
 * xferproxy: one executable, the mode picked by argv. This file parses the
 * command line, drops the permissions the mode does not need, loads only
 * that mode's code (a reverse session starts once per SSH session, so it
 * must not pay for the others), runs it and maps the outcome to an exit
 * status.
 * @module
 */

import { type Command, parseCommand, resolveConfigPath, UsageError } from "./src/cli/parse.ts";
import { usage, usageHint } from "./src/cli/usage.ts";
import { needsOf } from "./src/cli/needs.ts";
import { EXIT } from "./src/cli/exit.ts";
import { DEFAULT_CONFIG_PATH } from "./src/config/spec.ts";
import { realOutput } from "./src/platform/output.ts";
import { type Output } from "./src/cli/output.ts";
import { revokeExcept } from "./src/platform/permissions.ts";
import { parseLaunch } from "./src/platform/self.ts";
import { writeStderrLine } from "./src/platform/session_io.ts";
import { VERSION } from "./src/version.ts";

/**
 * Runs one command line; returns the exit status. `self`: this executable's
 * path, for the sudo call (see platform/self.ts). Exported for tests.
 */
export async function main(
  argv: readonly string[],
  output: Output,
  self: string = Deno.execPath(),
): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`xferproxy: ${error.message} (${usageHint(error.helpFor)})\n`);
    return EXIT.usage;
  }
  const env = (name: string) => Deno.env.get(name);
  revokeExcept(needsOf(command));
  switch (command.mode) {
    case "help":
      output.out(usage(command.topic) + "\n");
      return EXIT.ok;
    case "version":
      output.out(`xferproxy ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})\n`);
      return EXIT.ok;
    case "check": {
      const { runCheckMode } = await import("./src/platform/check_process.ts");
      return await runCheckMode(
        command,
        resolveConfigPath(command, env, DEFAULT_CONFIG_PATH),
        output,
      );
    }
    case "reverse":
      try {
        const { runReverse } = await import("./src/platform/reverse_process.ts");
        // Never from the environment: part of a session's environment comes from the client.
        return await runReverse(command.configPath ?? DEFAULT_CONFIG_PATH, self);
      } catch {
        // Never a stack trace on the client's stderr.
        writeStderrLine("xferproxy: internal error");
        return EXIT.proxyError;
      }
    case "dnat": {
      const { runDnat } = await import("./src/platform/dnat_process.ts");
      return await runDnat(
        command.args,
        resolveConfigPath(command, env, DEFAULT_CONFIG_PATH),
        output,
      );
    }
    case "forward": {
      const { runForward } = await import("./src/platform/forward_process.ts");
      return await runForward(
        command.args,
        resolveConfigPath(command, env, DEFAULT_CONFIG_PATH),
        output,
      );
    }
  }
}

if (import.meta.main) {
  const launch = parseLaunch(Deno.args, Deno.execPath());
  Deno.exit(await main(launch.args, realOutput, launch.self));
}
