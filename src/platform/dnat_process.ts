/**
 * DNAT mode as a process: `add` (a session's privileged call through sudo),
 * `del`, `list`, `reap`, and `serve` (the DNAT service). Through sudo it
 * trusts nothing the caller chose: only the system config, read without
 * following links and checked root-owned, and only the caller's own
 * sessions. Errors are one line on stderr, and in the log.
 * @module
 */

import { parseOrSay } from "../cli/parse.ts";
import { EXIT } from "../cli/exit.ts";
import { usageHint } from "../cli/usage.ts";
import { type Config, ConfigError, DEFAULT_CONFIG_PATH, loadConfig } from "../config/mod.ts";
import { logger, setupLogging, teardownLogging } from "../log/mod.ts";
import { openLogOutputs } from "./log_outputs.ts";
import { terminationSignal } from "./session_io.ts";
import { realRunner } from "./runner.ts";
import { openNft } from "./libnftables.ts";
import { realFs } from "./fs.ts";
import type { Output } from "../cli/output.ts";
import {
  enableAccounting,
  forwardingEnabled,
  prepareDnatDirectory,
  psProcessTable,
  registryStore,
  trustedFs,
  UntrustedPathError,
  writeHeartbeat,
} from "./dnat_host.ts";
import { parseDnatArgs } from "../dnat/args.ts";
import { NotAuthorizedError } from "../dnat/authorize.ts";
import { conntrackTool } from "../dnat/conntrack.ts";
import { describeHelperError } from "../dnat/errors.ts";
import { deleteSession, type HelperDeps, listSessions, reapSessions } from "../dnat/helper.ts";
import { iptablesBackend, NetfilterError } from "../dnat/iptables.ts";
import { type Caller, ForwardingDisabledError, install } from "../dnat/manager.ts";
import { nftablesBackend, nftCommandRunner } from "../dnat/nftables.ts";
import { runService } from "../dnat/service.ts";
import { formatPorts } from "../dnat/types.ts";
import { type AddReply, sudoCallerUid } from "../dnat/call.ts";

/** Runs `xferproxy dnat …`; returns the exit status. */
export async function runDnat(
  args: readonly string[],
  configPath: string,
  output: Output,
): Promise<number> {
  const command = parseOrSay(
    () => parseDnatArgs(args),
    "dnat",
    (line) => output.err(line),
    usageHint,
  );
  if (!command) return EXIT.usage;
  let outputs;
  try {
    const callerUid = sudoCallerUid((name) => Deno.env.get(name));
    const caller: Caller = callerUid === undefined ? {} : { uid: callerUid };
    // Through sudo only the system config counts, whatever --config or the environment say.
    const { config } = callerUid === undefined
      ? await loadConfig(configPath, realFs)
      : await loadConfig(DEFAULT_CONFIG_PATH, trustedFs);
    const rproxy = config.server.rproxy;
    outputs = openLogOutputs({
      ...(rproxy.logDirectory ? { directory: rproxy.logDirectory } : {}),
      ...(command.action === "serve" ? { stderr: true } : {}),
    });
    await setupLogging({ logLevel: rproxy.logLevel }, outputs);
    const log = logger("dnat");
    const dir = await prepareDnatDirectory(config.server.stateDirectory);
    const deps: HelperDeps = {
      backend: backendFor(config, command.action === "serve"),
      conntrack: conntrackTool(realRunner),
      store: registryStore(dir, (message) => log.warn(message)),
      processes: psProcessTable(realRunner),
      config,
      forwardingEnabled: (family) => forwardingEnabled(realRunner, family),
      now: Date.now,
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      log,
      print: (text) => output.out(text),
    };
    switch (command.action) {
      case "add": {
        const { session, filtering } = await install(deps, command.request, caller);
        const reply: AddReply = {
          event: "installed",
          proxy: formatPorts(session.proxy, session.proxyPort, session.portCount),
          server: formatPorts(session.server, session.serverPort, session.portCount),
          filtering,
        };
        output.out(JSON.stringify(reply) + "\n");
        break;
      }
      case "del":
        await deleteSession(deps, command.id, caller);
        break;
      case "list":
        await listSessions(deps, caller, command.json);
        break;
      case "reap": {
        const n = await reapSessions(deps, caller, command.all);
        output.out(`reaped ${n} session${n === 1 ? "" : "s"}\n`);
        break;
      }
      case "serve": {
        if (callerUid !== undefined) {
          throw new NotAuthorizedError("dnat serve is the root DNAT service: run it as root");
        }
        const termination = terminationSignal();
        try {
          await runService({
            ...deps,
            stop: termination.signal,
            heartbeat: () => writeHeartbeat(dir, Date.now()),
            enableAccounting: () => enableAccounting(realRunner),
          });
        } finally {
          termination.dispose();
          // Stopped, not stale: `check system` says so at once.
          await Deno.remove(`${dir}/service.json`).catch(() => {});
        }
        break;
      }
    }
    return EXIT.ok;
  } catch (error) {
    const line = describeHelperError(error, [
      ConfigError,
      UntrustedPathError,
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

/** The service keeps one libnftables context; a one-off call runs nft (its permissions hold no FFI). */
function backendFor(config: Config, service: boolean) {
  if (config.server.dnatBackend !== "nftables") return iptablesBackend(realRunner);
  return nftablesBackend(service ? openNft(realRunner) : nftCommandRunner(realRunner));
}
