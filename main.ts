/**
 * xferproxy: one executable, the mode picked by argv. This file parses the
 * command line, drops the permissions the mode does not need, builds the real
 * dependencies, runs the mode and maps the outcome to an exit status.
 * @module
 */

import { type Command, parseCommand, resolveConfigPath, UsageError } from "./src/cli/parse.ts";
import { usage, usageHint } from "./src/cli/usage.ts";
import { checkConfig, checkDefaults } from "./src/check/config.ts";
import { ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "./src/config/mod.ts";
import { logger, setupLogging, teardownLogging } from "./src/log/mod.ts";
import { openLogOutputs } from "./src/platform/log_outputs.ts";
import { openSharedJson } from "./src/platform/locked_file.ts";
import {
  dieBySignal,
  processStdio,
  processTerminal,
  terminationSignal,
  writeStderrLine,
} from "./src/platform/session_io.ts";
import { createBalancer } from "./src/balancer/balancer.ts";
import { connectUpstream } from "./src/ssh/bridge.ts";
import { readSessionInputs, SessionInputError } from "./src/reverse/inputs.ts";
import { EXIT_PROXY_ERROR, runSession, type SessionOutcome } from "./src/reverse/session.ts";
import { noUdpForwarding } from "./src/reverse/udp.ts";
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
      try {
        return await reverse(configPath as string);
      } catch {
        // Never a stack trace on the client's stderr.
        writeStderrLine("xferproxy: internal error");
        return EXIT_PROXY_ERROR;
      }
    case "forward":
    case "dnat":
      return notImplemented(command.mode, output);
  }
}

/**
 * A reverse session as sshd's ForceCommand. stdout and stderr belong to the
 * client: only one-line refusals go there; logs go to syslog or the log file.
 */
async function reverse(configPath: string): Promise<number> {
  const env = (name: string) => Deno.env.get(name);
  // A stray rejection (e.g. from a socket event) is logged, never printed to the client.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger("reverse").error("Unhandled rejection: {error}", { error: String(event.reason) });
  });
  const early = openLogOutputs({});
  await setupLogging({ logLevel: 0 }, early);
  let inputs;
  let config;
  try {
    inputs = readSessionInputs(env);
    config = (await loadConfig(configPath, realFs)).config;
  } catch (error) {
    if (!(error instanceof SessionInputError || error instanceof ConfigError)) throw error;
    writeStderrLine(
      `xferproxy: ${
        error instanceof SessionInputError
          ? error.message
          : "the proxy configuration is invalid; see the proxy log"
      }`,
    );
    logger("reverse").error("Session refused: {error}", { error: error.message });
    await teardownLogging();
    await early.close();
    return EXIT_PROXY_ERROR;
  }
  await teardownLogging();
  await early.close();
  const rproxy = config.server.rproxy;
  const outputs = openLogOutputs(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {});
  await setupLogging({ logLevel: rproxy.logLevel }, outputs);
  const termination = terminationSignal();
  const terminal = processTerminal(env);
  let outcome: SessionOutcome;
  try {
    outcome = await runSession(inputs, config, {
      fs: realFs,
      stdio: processStdio(),
      ...(terminal ? { terminal } : {}),
      abort: termination.signal,
      now: () => Date.now(),
      newId: () => crypto.randomUUID(),
      balancer: (dir) => createBalancer(openSharedJson(dir, "balancer"), () => Date.now()),
      connect: connectUpstream,
      udp: noUdpForwarding,
      tellClient: writeStderrLine,
      log: logger("reverse"),
    });
  } catch (error) {
    writeStderrLine("xferproxy: internal error; see the proxy log");
    logger("reverse").fatal("Internal error: {error}", {
      error: error instanceof Error ? error.stack ?? error.message : String(error),
    });
    outcome = { exitCode: EXIT_PROXY_ERROR };
  } finally {
    termination.dispose();
    await teardownLogging();
    await outputs.close();
  }
  if ("signal" in outcome) {
    dieBySignal(outcome.signal);
    return EXIT_PROXY_ERROR;
  }
  return outcome.exitCode;
}

function notImplemented(what: string, output: Output): number {
  output.err(`xferproxy: ${what} is not implemented yet in this build\n`);
  return EXIT.failure;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, realOutput));
}
