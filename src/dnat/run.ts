/**
 * `xferproxy dnat …` as a process: `add` (a session's privileged call
 * through sudo), `del`, `list`, `reap`, and `serve` (the DNAT service).
 * Through sudo it trusts nothing the caller chose: only the system config,
 * read through the platform's trusted reader, and only the caller's own
 * sessions. Failures are logged here and thrown as `UserError`s for
 * main.ts to print; `add` also answers them as a JSON event.
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { RunContext } from "../cli/command.ts";
import { resolveConfigPath } from "../cli/parse.ts";
import { EXIT } from "../cli/exit.ts";
import { type Config, DEFAULT_CONFIG_PATH, loadConfig } from "../config/mod.ts";
import type { Fs } from "../config/fs.ts";
import { UserError } from "../errors.ts";
import { logger, type OpenLogs, withLogging } from "../log/mod.ts";
import { NotAuthorizedError } from "./authorize.ts";
import type { DnatArgs } from "./command.ts";
import { formatAddReply, sudoCallerUid } from "./contract.ts";
import { deleteSession, type HelperDeps, listSessions, reapSessions } from "./helper.ts";
import { type Caller, type DnatDeps, install } from "./manager.ts";
import { runService } from "./service.ts";
import { formatPorts } from "./types.ts";

/** What the dnat actions need from the system (platform/dnat_platform.ts implements it). */
export interface DnatPlatform {
  /** Reads any config file (root, not through sudo). */
  readonly fs: Fs;
  /** Reads only root-owned files nobody else may change, not through links (under sudo). */
  readonly trustedFs: Fs;
  /** Log outputs; the service's also go to stderr (the journal). */
  openLogs(service: boolean): OpenLogs;
  /** Makes `<state_directory>/dnat` root-only if missing, checks it, returns its path. */
  prepareDirectory(stateDirectory: string): Promise<string>;
  /** Everything the manager touches; `service`: one long-lived netfilter context. */
  dnatDeps(config: Config, dir: string, log: Logger, service: boolean): DnatDeps;
  /** The service's own parts, released by `close`. */
  serviceHost(dir: string, log: Logger): ServiceHost;
}

/** What only the long-lived service has. */
export interface ServiceHost {
  /** Fires on SIGTERM or SIGINT (SIGHUP reopens the log file instead). */
  readonly stop: AbortSignal;
  heartbeat(): Promise<void>;
  enableAccounting(): Promise<boolean>;
  /** Stops listening for signals and removes the heartbeat: stopped, not stale. */
  close(): Promise<void>;
}

/** Runs `xferproxy dnat …`; returns the exit status. */
export async function runDnat(
  args: DnatArgs,
  platform: DnatPlatform,
  context: RunContext,
): Promise<number> {
  const { request } = args;
  const callerUid = sudoCallerUid(context.env);
  try {
    // Through sudo only the system config counts, whatever --config or the environment say.
    const { config } = callerUid === undefined
      ? await loadConfig(resolveConfigPath(args, context.env, DEFAULT_CONFIG_PATH), platform.fs)
      : await loadConfig(DEFAULT_CONFIG_PATH, platform.trustedFs);
    const open = platform.openLogs(request.action === "serve");
    await withLogging(config.server.rproxy, open, async () => {
      const log = logger("dnat");
      try {
        await perform(args, config, callerUid, platform, context, log);
      } catch (error) {
        if (error instanceof UserError) {
          log.error("dnat {action} failed: {error}", {
            action: request.action,
            error: error.message,
          });
        }
        throw error;
      }
    });
    return EXIT.ok;
  } catch (error) {
    if (request.action === "add" && error instanceof UserError) {
      const event = error instanceof NotAuthorizedError ? "refused" : "failed";
      context.output.out(formatAddReply({ event, reason: error.message }));
    }
    throw error;
  }
}

async function perform(
  { request }: DnatArgs,
  config: Config,
  callerUid: number | undefined,
  platform: DnatPlatform,
  context: RunContext,
  log: Logger,
): Promise<void> {
  const caller: Caller = callerUid === undefined ? {} : { uid: callerUid };
  const dir = await platform.prepareDirectory(config.server.stateDirectory);
  const service = request.action === "serve";
  const deps: HelperDeps = {
    ...platform.dnatDeps(config, dir, log, service),
    print: (text) => context.output.out(text),
  };
  switch (request.action) {
    case "add": {
      const { session, filtering } = await install(deps, request.request, caller);
      context.output.out(formatAddReply({
        event: "installed",
        proxy: formatPorts(session.proxy, session.proxyPort, session.portCount),
        server: formatPorts(session.server, session.serverPort, session.portCount),
        filtering,
      }));
      return;
    }
    case "del":
      return await deleteSession(deps, request.id, caller);
    case "list":
      return await listSessions(deps, caller, request.json);
    case "reap": {
      const n = await reapSessions(deps, caller, request.all);
      context.output.out(`reaped ${n} session${n === 1 ? "" : "s"}\n`);
      return;
    }
    case "serve": {
      if (callerUid !== undefined) {
        throw new NotAuthorizedError("dnat serve is the root DNAT service: run it as root");
      }
      const host = platform.serviceHost(dir, log);
      try {
        await runService({
          ...deps,
          stop: host.stop,
          heartbeat: () => host.heartbeat(),
          enableAccounting: () => host.enableAccounting(),
        });
      } finally {
        await host.close();
      }
    }
  }
}
