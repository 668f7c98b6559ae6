/**
 * xferproxy: one executable, the mode picked by argv. This file holds the
 * table of modes, each bound to the loader of its real platform; it parses
 * the command line, drops the permissions the mode does not need, runs it
 * and turns an expected error into its one line and exit status. Each mode
 * loads only its own code (a reverse session starts once per SSH session,
 * so it must not pay for the others).
 * @module
 */

import { bindPlatform, type ModeEntry, withoutPlatform } from "./src/cli/command.ts";
import { parseCommandLine } from "./src/cli/parse.ts";
import { helpMode, versionMode } from "./src/cli/help.ts";
import { reportFailure } from "./src/cli/report.ts";
import { UserError } from "./src/errors.ts";
import type { Output } from "./src/cli/output.ts";
import { checkMode } from "./src/check/command.ts";
import { dnatMode } from "./src/dnat/command.ts";
import { forwardMode } from "./src/forward/command.ts";
import { reverseMode } from "./src/reverse/command.ts";
import { realOutput } from "./src/platform/output.ts";
import { revokeExcept } from "./src/platform/permissions.ts";
import { type Launch, parseLaunch, runByRoot } from "./src/platform/self.ts";

/** Every mode, in the order the overview lists them. */
export const MODES: readonly ModeEntry[] = [
  bindPlatform(
    reverseMode,
    async () => (await import("./src/platform/reverse_platform.ts")).reversePlatform,
  ),
  bindPlatform(
    forwardMode,
    async () => (await import("./src/platform/forward_platform.ts")).forwardPlatform,
  ),
  bindPlatform(
    checkMode,
    async () => (await import("./src/platform/check_platform.ts")).checkPlatform,
  ),
  bindPlatform(
    dnatMode,
    async () => (await import("./src/platform/dnat_platform.ts")).dnatPlatform,
  ),
  withoutPlatform(versionMode),
  withoutPlatform(helpMode(() => MODES)),
];

/**
 * One environment variable. Part of a reverse session's comes from the SSH client: one that is not
 * UTF-8 is a one-line refusal, not an internal error.
 */
function environmentVariable(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch (error) {
    if (!(error instanceof Deno.errors.InvalidData)) throw error;
    throw new UserError(`${name} is not UTF-8 text`);
  }
}

/**
 * Runs one command line; returns the exit status. `self`: this executable's
 * path, for the sudo call (see platform/self.ts). Exported for tests.
 */
export async function main(
  argv: readonly string[],
  output: Output,
  self: string = Deno.execPath(),
): Promise<number> {
  // Asked before the mode's permissions are revoked; the answer words a denied system call.
  const byRoot = runByRoot();
  try {
    const invocation = parseCommandLine(MODES, argv);
    revokeExcept(invocation.needs);
    return await invocation.run({ output, self, env: environmentVariable });
  } catch (error) {
    return reportFailure(error, output, byRoot);
  }
}

/** Runs a launched command line with the real output and exits with its status. */
export async function launchMain(launch: Launch): Promise<never> {
  Deno.exit(await main(launch.args, realOutput, launch.self));
}

if (import.meta.main) {
  const launch = parseLaunch(Deno.args, Deno.execPath());
  // A compiled binary's session asks the DNAT service to decide it, loading only the light path.
  // The launcher's sessions start as the session client (src/native/session_client.c), which
  // runs this program only when the service could not decide: then it decides here, at once.
  if (launch.args[0] === "reverse" && !launch.byLauncher) {
    const code = await (await import("./src/platform/thin_session.ts")).runThinSession(launch.args);
    if (code !== undefined) Deno.exit(code);
  }
  await launchMain(launch);
}
