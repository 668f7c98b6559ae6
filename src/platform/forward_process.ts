/**
 * Forward mode as a process: the daemon, its API users, and the client
 * helper used as OpenSSH's ProxyCommand.
 * @module
 */

import { parseOrSay } from "../cli/parse.ts";
import { EXIT } from "../cli/exit.ts";
import { usageHint } from "../cli/usage.ts";
import {
  type Config,
  ConfigError,
  formatPosition,
  loadConfig,
  type Problem,
} from "../config/mod.ts";
import { logger, setupLogging, teardownLogging } from "../log/mod.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { terminationSignal } from "./session_io.ts";
import { describeHelperError } from "../dnat/errors.ts";
import { ForwardingDisabledError } from "../dnat/manager.ts";
import { iptablesBackend, NetfilterError } from "../dnat/iptables.ts";
import { conntrackTool } from "../dnat/conntrack.ts";
import { parseForwardArgs } from "../forward/args.ts";
import { DaemonStartError, runDaemon } from "../forward/daemon.ts";
import { manageUsers } from "../forward/user_cmd.ts";
import {
  emptyUsers,
  parseUsers,
  serializeUsers,
  type UsersFile,
  UsersFileError,
} from "../forward/users.ts";
import { forwardConnect } from "./forward_client.ts";
import {
  localAddressFor,
  ownNetworks,
  portFree,
  readUsersText,
  resolveName,
  writeUsersText,
} from "./forward_host.ts";
import { forwardingEnabled, psProcessTable } from "./dnat_host.ts";
import { realRunner } from "./runner.ts";
import { serveHttp } from "./http_server.ts";
import { ensureSelfSigned, SelfSignedError } from "./self_signed.ts";
import { realFs } from "./fs.ts";
import type { Output } from "../cli/output.ts";

/** Forward mode: the daemon, its users, and the client helper. */
export async function runForward(
  args: readonly string[],
  configPath: string,
  output: Output,
): Promise<number> {
  const command = parseOrSay(
    () => parseForwardArgs(args),
    "forward",
    (line) => output.err(line),
    usageHint,
  );
  if (!command) return EXIT.usage;
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
  let warnings: Problem[];
  try {
    ({ config, warnings } = await loadConfig(configPath, realFs));
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
    return await serve(config, { path: configPath, warnings }, loadUsers, output);
  } catch (error) {
    const line = describeHelperError(error, [
      SelfSignedError,
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
  loaded: { path: string; warnings: readonly Problem[] },
  loadUsers: () => Promise<UsersFile>,
  output: Output,
): Promise<number> {
  const rproxy = config.server.rproxy;
  const outputs = openLogOutputs({
    stderr: true,
    ...(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {}),
  });
  await setupLogging({ logLevel: rproxy.logLevel }, outputs);
  // What check config warns about, once; the certificate is said by the daemon, with its fingerprint.
  for (const warning of loaded.warnings.filter((w) => w.tag !== "cert_file")) {
    logger("forward").warn("Config {path}: {problem}", {
      path: loaded.path,
      problem: formatPosition(warning),
    });
  }
  const termination = terminationSignal();
  // Nothing a client does may end the daemon: a stray rejection is logged, never fatal.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
    logger("forward").error("Unhandled rejection: {error}", { error: String(event.reason) });
  });
  const processes = psProcessTable(realRunner);
  const own = (await processes.lookup([Deno.pid])).get(Deno.pid);
  if (!own) throw new Error("Cannot read this process's start time from ps");
  try {
    await runDaemon(config, {
      host: {
        serve: (options, handler) =>
          serveHttp({ ...options, onEvent: floodReporter(logger("forward", "http")) }, handler),
        readFile: (path) => Deno.readTextFile(path),
        defaultTls: () => ensureSelfSigned(config.server.stateDirectory, realRunner),
        localAddressFor: (client) => localAddressFor(realRunner, client),
        ownNetworks: () => ownNetworks(realRunner),
        portFree,
        resolve: resolveName,
        loadUsers,
        forwardingEnabled: (family) => forwardingEnabled(realRunner, family),
        processes,
        stop: termination.signal,
        owner: { pid: Deno.pid, start: own.start },
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

/** Logs refused connections and accept errors at most once per 10 s, with how many there were. */
function floodReporter(
  log: ReturnType<typeof logger>,
): (event: string, detail: Record<string, unknown>) => void {
  let last = 0;
  let suppressed = 0;
  return (event, detail) => {
    const now = Date.now();
    if (now - last < 10_000) {
      suppressed++;
      return;
    }
    last = now;
    log.warn(
      event === "refused"
        ? "Refusing connections over the limits: {client} ({suppressed} more since the last line)"
        : "Cannot accept connections: {error} ({suppressed} more since the last line)",
      { ...detail, suppressed },
    );
    suppressed = 0;
  };
}
