/**
 * xferproxy: one executable, the mode picked by argv. This file parses the
 * command line, drops the permissions the mode does not need, builds the real
 * dependencies, runs the mode and maps the outcome to an exit status.
 * @module
 */

import { type Command, parseCommand, resolveConfigPath, UsageError } from "./src/cli/parse.ts";
import { usage, usageHint } from "./src/cli/usage.ts";
import { checkConfig, checkDefaults } from "./src/check/config.ts";
import { DEFAULT_CONFIG_PATH } from "./src/config/mod.ts";
import { realFs } from "./src/platform/fs.ts";
import { type Output, realOutput } from "./src/platform/output.ts";
import { revokeExcept } from "./src/platform/permissions.ts";
import { needsOf } from "./src/cli/needs.ts";
import { VERSION } from "./src/version.ts";

/** Exit statuses (DESIGN.md): 0 success, 1 failure or problems found, 2 usage error. */
const EXIT = { ok: 0, failure: 1, usage: 2 } as const;

/** Runs one command line; returns the exit status. Exported for tests. */
export async function main(argv: readonly string[], output: Output): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`xferproxy: ${error.message} (${usageHint(error.helpFor)})\n`);
    return EXIT.usage;
  }
  const configPath =
    command.mode === "check" || command.mode === "reverse" || command.mode === "forward" ||
      command.mode === "dnat"
      ? resolveConfigPath(command, (name) => Deno.env.get(name), DEFAULT_CONFIG_PATH)
      : undefined;
  revokeExcept(needsOf(command));
  switch (command.mode) {
    case "help":
      output.out(usage(command.topic) + "\n");
      return EXIT.ok;
    case "version":
      output.out(`xferproxy ${VERSION} (deno ${Deno.version.deno}, v8 ${Deno.version.v8})\n`);
      return EXIT.ok;
    case "check":
      if (command.topic === "config") {
        return await checkConfig(configPath as string, realFs, output);
      }
      if (command.topic === "defaults") return checkDefaults(VERSION, output);
      return notImplemented(`check ${command.topic === "all" ? "(all)" : command.topic}`, output);
    case "reverse":
    case "forward":
    case "dnat":
      return notImplemented(command.mode, output);
  }
}

function notImplemented(what: string, output: Output): number {
  output.err(`xferproxy: ${what} is not implemented yet in this build\n`);
  return EXIT.failure;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, realOutput));
}
