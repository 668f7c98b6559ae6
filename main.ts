/**
 * xferproxy: one executable, the mode picked by argv. This file parses the
 * command line, drops the permissions the mode does not need, builds the real
 * dependencies, runs the mode and maps the outcome to an exit status.
 * @module
 */

import { type Command, parseCommand, resolveConfigPath, UsageError } from "./src/cli/parse.ts";
import { usage, usageHint } from "./src/cli/usage.ts";
import { checkConfig, checkDefaults } from "./src/check/config.ts";
import { runCheck } from "./src/check/run.ts";
import { checkHost } from "./src/platform/check_host.ts";
import { type Config, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "./src/config/mod.ts";
import { logger, setupLogging, teardownLogging } from "./src/log/mod.ts";
import { openLogOutputs } from "./src/platform/log_outputs.ts";
import { openSharedJson } from "./src/platform/locked_file.ts";
import {
  processStdio,
  processTerminal,
  terminationSignal,
  writeStderrLine,
} from "./src/platform/session_io.ts";
import { createBalancer } from "./src/balancer/balancer.ts";
import { connectUpstream } from "./src/ssh/bridge.ts";
import { readSessionInputs, SessionInputError } from "./src/reverse/inputs.ts";
import { EXIT_PROXY_ERROR, runSession, type SessionOutcome } from "./src/reverse/session.ts";
import { selfPath, sudoForwarder } from "./src/platform/dnat_helper_process.ts";
import { parseDnatArgs } from "./src/dnat/args.ts";
import { NotAuthorizedError } from "./src/dnat/authorize.ts";
import { conntrackTool } from "./src/dnat/conntrack.ts";
import {
  addSession,
  ForwardingDisabledError,
  listSessions,
  reap,
  removeSessions,
} from "./src/dnat/helper.ts";
import { iptablesBackend, NetfilterError } from "./src/dnat/iptables.ts";
import { nftablesBackend } from "./src/dnat/nftables.ts";
import { describeHelperError } from "./src/dnat/errors.ts";
import { parseForwardArgs } from "./src/forward/args.ts";
import { DaemonStartError, runDaemon } from "./src/forward/daemon.ts";
import { manageUsers } from "./src/forward/user_cmd.ts";
import {
  emptyUsers,
  parseUsers,
  serializeUsers,
  type UsersFile,
  UsersFileError,
} from "./src/forward/users.ts";
import { forwardConnect } from "./src/platform/forward_client.ts";
import {
  localAddressFor,
  ownNetworks,
  portFree,
  readUsersText,
  resolveName,
  serveHttp,
  writeUsersText,
} from "./src/platform/forward_host.ts";
import {
  checkRootOwned,
  forwardingEnabled,
  liveXferproxyPids,
  UntrustedConfigError,
  withLock,
} from "./src/platform/dnat_host.ts";
import { realRunner } from "./src/platform/runner.ts";
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
      if (command.topic === "config" && !command.json && command.root === undefined) {
        return await checkConfig(configPath as string, realFs, output);
      }
      if (command.topic === "defaults") return checkDefaults(VERSION, output);
      return await runCheck(checkHost(command.root ?? "/", realRunner), {
        topic: command.topic,
        configPath: configPath as string,
        sshdConfigPath: command.sshdConfig ?? "/etc/ssh/sshd_config",
        json: command.json,
      }, output);
    case "reverse":
      try {
        return await reverse(configPath as string);
      } catch {
        // Never a stack trace on the client's stderr.
        writeStderrLine("xferproxy: internal error");
        return EXIT_PROXY_ERROR;
      }
    case "dnat":
      return await dnat(command.args, configPath as string, output);
    case "forward":
      return await forward(command.args, configPath as string, output);
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
      udp: sudoForwarder({
        binary: selfPath(env),
        configPath,
        owner: Deno.pid,
        log: logger("reverse", "udp"),
        tellClient: writeStderrLine,
      }),
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
  return outcome.exitCode;
}

/**
 * The DNAT helper, normally run through sudo by reverse sessions. Errors are
 * one line on stderr (read by the session, or by an administrator).
 */
async function dnat(args: readonly string[], configPath: string, output: Output): Promise<number> {
  let command;
  try {
    command = parseDnatArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`xferproxy: ${error.message} (${usageHint("dnat")})\n`);
    return EXIT.usage;
  }
  let outputs;
  try {
    // Started by sudo for a user: only a root-owned config may authorize destinations.
    const sudoUid = Deno.env.get("SUDO_UID");
    if (sudoUid !== undefined && sudoUid !== "0") checkRootOwned(configPath);
    const { config } = await loadConfig(configPath, realFs);
    const rproxy = config.server.rproxy;
    outputs = openLogOutputs(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {});
    await setupLogging({ logLevel: rproxy.logLevel }, outputs);
    const termination = terminationSignal();
    const deps = {
      backend: config.server.dnatBackend === "nftables"
        ? nftablesBackend(realRunner)
        : iptablesBackend(realRunner),
      conntrack: conntrackTool(realRunner),
      config,
      lock: <T>(fn: () => Promise<T>) => withLock(config.server.stateDirectory, fn),
      livePids: () => liveXferproxyPids(realRunner),
      forwardingEnabled: (family: 4 | 6) => forwardingEnabled(realRunner, family),
      emit: (event: Record<string, unknown>) => output.out(JSON.stringify(event) + "\n"),
      print: (text: string) => output.out(text),
      released: () =>
        Promise.race([
          drainStdin(),
          new Promise<void>((r) => termination.signal.addEventListener("abort", () => r())),
        ]),
      sleep: (ms: number) => new Promise<void>((r) => setTimeout(r, ms)),
      log: logger("dnat"),
    };
    try {
      switch (command.action) {
        case "add":
          await addSession(deps, command.request, command.hold);
          break;
        case "del": {
          const removed = await removeSessions(deps, new Set([command.id]));
          if (removed.length === 0) {
            output.err(`xferproxy: no DNAT session ${command.id}\n`);
            return EXIT.failure;
          }
          logger("dnat").info("Removed UDP forwarding of session {session}", {
            session: command.id,
          });
          break;
        }
        case "list":
          await listSessions(deps, command.json);
          break;
        case "reap": {
          const removed = await reap(deps, command.all);
          output.out(`reaped ${removed.length} session${removed.length === 1 ? "" : "s"}\n`);
          break;
        }
      }
    } finally {
      termination.dispose();
    }
    return EXIT.ok;
  } catch (error) {
    const line = describeHelperError(error, [
      ConfigError,
      UntrustedConfigError,
      NotAuthorizedError,
      ForwardingDisabledError,
      NetfilterError,
    ]);
    if (line === undefined) throw error;
    const shown = error instanceof NotAuthorizedError ? `dnat refused: ${line}` : line;
    output.err(`xferproxy: ${shown}\n`);
    logger("dnat").error("dnat {action} failed: {error}", { action: command.action, error: line });
    return EXIT.failure;
  } finally {
    await teardownLogging();
    await outputs?.close();
  }
}

/** Forward mode: the daemon, its users, and the client helper. */
async function forward(
  args: readonly string[],
  configPath: string,
  output: Output,
): Promise<number> {
  let command;
  try {
    command = parseForwardArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    output.err(`xferproxy: ${error.message} (${usageHint("forward")})\n`);
    return EXIT.usage;
  }
  if (command.action === "connect") {
    const password = command.proxy.password ?? Deno.env.get("XFERPROXY_PROXY_PASS") ??
      Deno.env.get("ASPERA_PROXY_PASS");
    return await forwardConnect({
      ...command,
      ...(password !== undefined ? { password } : {}),
      say: (line) => output.err(line + "\n"),
    });
  }
  let config;
  try {
    config = (await loadConfig(configPath, realFs)).config;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    output.err(`xferproxy: ${error.message}\n`);
    return EXIT.failure;
  }
  const usersFile = config.server.proxy.usersFile;
  const loadUsers = async () => {
    const text = await readUsersText(usersFile);
    return text === undefined ? emptyUsers() : parseUsers(text, usersFile);
  };
  try {
    if (command.action !== "serve") {
      return await manageUsers(command, {
        load: loadUsers,
        save: (users) => writeUsersText(usersFile, serializeUsers(users)),
        readStdin: async () => await new Response(Deno.stdin.readable).text(),
        generatePassword: () => crypto.randomUUID().replaceAll("-", ""),
        out: (text) => output.out(text),
      });
    }
    return await serve(config, loadUsers, output);
  } catch (error) {
    const line = describeHelperError(error, [
      UsersFileError,
      DaemonStartError,
      ForwardingDisabledError,
      NetfilterError,
    ]);
    if (line === undefined) throw error;
    output.err(`xferproxy: ${line}\n`);
    return EXIT.failure;
  }
}

async function serve(
  config: Config,
  loadUsers: () => Promise<UsersFile>,
  output: Output,
): Promise<number> {
  const rproxy = config.server.rproxy;
  const outputs = openLogOutputs({
    stderr: true,
    ...(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {}),
  });
  await setupLogging({ logLevel: rproxy.logLevel }, outputs);
  const termination = terminationSignal();
  try {
    await runDaemon(config, {
      host: {
        serve: serveHttp,
        readFile: (path) => Deno.readTextFile(path),
        localAddressFor: (client) => localAddressFor(realRunner, client),
        ownNetworks: () => ownNetworks(realRunner),
        portFree,
        resolve: resolveName,
        loadUsers,
        forwardingEnabled: (family) => forwardingEnabled(realRunner, family),
        livePids: () => liveXferproxyPids(realRunner),
        stop: termination.signal,
        pid: Deno.pid,
        now: () => Date.now(),
        newId: () => crypto.randomUUID(),
      },
      backend: iptablesBackend(realRunner),
      conntrack: conntrackTool(realRunner),
      log: logger("forward"),
    });
    return EXIT.ok;
  } catch (error) {
    logger("forward").error("{error}", { error: (error as Error).message });
    throw error;
  } finally {
    termination.dispose();
    await teardownLogging();
    await outputs.close();
    void output;
  }
}

/** Resolves when stdin reaches EOF (the session process closed its end, or died). */
async function drainStdin(): Promise<void> {
  try {
    for await (const _ of Deno.stdin.readable) { /* discard */ }
  } catch { /* closed */ }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args, realOutput));
}
